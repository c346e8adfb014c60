"""The docs' plugin, registered as a plugin under development is (docs/testing_plugins.md)."""

from __future__ import annotations

import re
from pathlib import Path

import portal_loyalty
import pytest
from portal_loyalty import before_page

DOCS = Path(__file__).parents[3] / "docs"


@pytest.fixture(scope="session")
def portal_plugins() -> list[tuple[str, object]]:
    # before_page declares no PluginInfo: like a theme's hooks, it is called for every merchant.
    return [("loyalty", portal_loyalty), ("loyalty_state", before_page)]


def docs_block(page: str, name: str) -> str:
    """The code block of ``docs/<page>`` marked ``<!-- docs-run: <this file>::<name> -->``."""
    found = re.findall(
        rf"<!-- docs-run: tests/support/docs_plugin/\w+\.py::{name} -->\n```python\n(.*?)```",
        (DOCS / page).read_text(encoding="utf-8"),
        flags=re.DOTALL,
    )
    assert len(found) == 1, f"docs/{page} marks {len(found)} blocks for {name}"
    return found[0]
