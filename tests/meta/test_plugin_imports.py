"""Plugins and themes import core only through its one SDK surface, ``portal.sdk``.

Every Python file of every distribution under ``plugins/`` and ``themes/`` is parsed (imports
inside functions and ``TYPE_CHECKING`` blocks included); an import of any other ``portal``
module fails the test with the file, line and module. ``portal.testing`` (the pytest plugin)
is allowed too, for tests shipped with a plugin.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ALLOWED = {"portal.sdk", "portal.testing"}
PACKAGES = sorted(path for folder in ("plugins", "themes") for path in (ROOT / folder).iterdir() if path.is_dir())


def core_imports(source: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``portal`` module in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "portal":  # from portal import x: x is a module of core
                found += [(node.lineno, f"portal.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, module) for line, module in found if module == "portal" or module.startswith("portal.")]


def test_there_are_plugins_and_themes_to_check() -> None:
    names = {path.name for path in PACKAGES}
    assert {"cards", "base"} <= names, names


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_plugin_imports_core_only_through_the_sdk(package: Path) -> None:
    sources = sorted(package.rglob("*.py"))
    assert sources, f"no Python files in {package}"
    wrong = [
        f"{source.relative_to(ROOT)}:{line} imports {module}"
        for source in sources
        for line, module in core_imports(source)
        if module not in ALLOWED
    ]
    assert not wrong, "import these through portal.sdk (add what is missing there):\n" + "\n".join(wrong)


def test_the_check_sees_an_import_it_must_refuse(tmp_path: Path) -> None:
    source = tmp_path / "plugin.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nfrom portal.sdk import emit\nif TYPE_CHECKING:\n"
        "    from portal.platform import Platform\ndef f():\n    import portal.db.engine\n    from portal import ids\n"
    )
    assert core_imports(source) == [
        (2, "portal.sdk"),
        (4, "portal.platform"),
        (6, "portal.db.engine"),
        (7, "portal.ids"),
    ]
