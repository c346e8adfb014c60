"""Plugins and themes import core only through its one SDK surface, ``portal.sdk``.

Every distribution under ``plugins/``, ``themes/`` and ``examples/`` is checked with the test
kit's ``assert_imports_only_sdk``, the check a third-party plugin runs in its own tests: every
Python file is parsed (imports inside functions and ``TYPE_CHECKING`` blocks included), and an
import of any other ``portal`` module fails with the file, line and module. Test code may also
import ``portal.testing``; a plugin's own code may not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.testing import assert_imports_only_sdk

ROOT = Path(__file__).parents[2]
PACKAGES = sorted(
    path for folder in ("plugins", "themes", "examples") for path in (ROOT / folder).iterdir() if path.is_dir()
)


def test_there_are_plugins_and_themes_to_check() -> None:
    names = {path.name for path in PACKAGES}
    assert {"cards", "base", "notes"} <= names, names


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_plugin_imports_core_only_through_the_sdk(package: Path) -> None:
    assert sorted(package.rglob("*.py")), f"no Python files in {package}"
    assert_imports_only_sdk(package)
