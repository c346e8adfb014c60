"""Every hookspec has its own section in docs/plugin_hooks.md and is exercised by the tests."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from portal import hookspecs

ROOT = Path(__file__).parents[2]
HOOKS = sorted(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("portal_"))


def test_hookspecs_exist() -> None:
    assert len(HOOKS) >= 13


def _documented() -> list[str]:
    text = (ROOT / "docs" / "plugin_hooks.md").read_text(encoding="utf-8")
    return re.findall(r"^## (portal_\w+)\s*$", text, flags=re.MULTILINE)


def test_each_hook_has_exactly_one_section() -> None:
    documented = _documented()
    assert sorted(documented) == HOOKS
    assert len(documented) == len(set(documented))


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_is_implemented_by_a_test_plugin_and_has_a_docstring(hook: str) -> None:
    sources = [p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py") if "meta" not in p.parts]
    implemented = re.compile(rf"^def {hook}\(|\.{hook} = hookimpl\(", flags=re.MULTILINE)  # a test plugin's hookimpl
    assert any(implemented.search(source) for source in sources), f"no test plugin implements {hook}"
    assert inspect.getdoc(getattr(hookspecs, hook)), f"{hook} has no docstring"
