"""The docs' plugin, registered as a plugin under development is (docs/testing_plugins.md).

The notes example of ``docs/writing_plugins.md`` is registered too: ``docs/sdk.md``'s fragments
read its table.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import bonus_plugin
import portal_loyalty
import pytest
from portal_loyalty import before_page

sys.path.insert(0, str(Path(__file__).parents[3] / "examples" / "notes"))


@pytest.fixture(scope="session")
def portal_plugins() -> list[tuple[str, object]]:
    # before_page declares no PluginInfo: like a theme's hooks, it is called for every merchant.
    return [
        ("loyalty", portal_loyalty),
        ("loyalty_state", before_page),
        ("loyalty_bonus", bonus_plugin),
        ("notes", importlib.import_module("portal_notes")),
    ]
