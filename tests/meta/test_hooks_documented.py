"""Every hook, core's and those plugins add, is documented and implemented by a registered test plugin.

The hooks are read from the plugin manager the tests run with (installed plugins plus the test
plugins), so a hook a plugin adds through ``portal_addhooks`` is covered like a core one.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import pytest

from portal import hookspecs
from portal.plugins.manager import create_plugin_manager

ROOT = Path(__file__).parents[2]
TESTS = ROOT / "tests"
CORE_HOOKS = sorted(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("portal_"))


def manager(plugins: list[tuple[str, object]]) -> pluggy.PluginManager:
    return create_plugin_manager(None, plugins)


def all_hooks(pm: pluggy.PluginManager) -> dict[str, pluggy.HookCaller]:
    """Every hook with a specification: core's and the ones plugins add."""
    return {
        name: caller
        for name, caller in vars(pm.hook).items()
        if isinstance(caller, pluggy.HookCaller) and caller.spec is not None and name.startswith("portal_")
    }


def spec_module(caller: pluggy.HookCaller) -> str:
    assert caller.spec is not None
    return caller.spec.namespace.__name__


def test_hookspecs_exist(portal_plugins) -> None:
    hooks = all_hooks(manager(portal_plugins))
    assert len(CORE_HOOKS) >= 13
    assert set(CORE_HOOKS) < set(hooks), "plugins add hooks of their own (portal_cards_card_required at least)"
    assert "portal_cards_card_required" in hooks


def _documented_core() -> list[str]:
    text = (ROOT / "docs" / "plugin_hooks.md").read_text(encoding="utf-8")
    return re.findall(r"^## (portal_\w+)\s*$", text, flags=re.MULTILINE)


def test_each_core_hook_has_exactly_one_section() -> None:
    documented = _documented_core()
    assert sorted(documented) == CORE_HOOKS
    assert len(documented) == len(set(documented))


def test_each_hook_a_plugin_adds_is_documented_with_its_plugin(portal_plugins) -> None:
    """A plugin's own hooks have a section in ``docs/plugins/<key>.md``."""
    added = {name: caller for name, caller in all_hooks(manager(portal_plugins)).items() if name not in CORE_HOOKS}
    assert added
    docs = {path: path.read_text(encoding="utf-8") for path in (ROOT / "docs" / "plugins").glob("*.md")}
    for name, caller in added.items():
        sections = [path.name for path, text in docs.items() if re.search(rf"^#+ {name}\s*$", text, re.MULTILINE)]
        assert len(sections) == 1, f"{name} (from {spec_module(caller)}) needs one section in docs/plugins: {sections}"
        assert caller.spec is not None and inspect.getdoc(caller.spec.function), f"{name} has no docstring"


def registered_in_a_test(name: str) -> bool:
    """A test builds a plugin of its own for ``name`` and registers it (``plugin.<name> = hookimpl(...)``)."""
    pattern = re.compile(rf"\.{name} = hookimpl\(")
    return any(pattern.search(path.read_text(encoding="utf-8")) for path in TESTS.rglob("test_*.py"))


def test_each_hook_is_implemented_by_a_registered_test_plugin(portal_plugins) -> None:
    """Not merely defined somewhere: a plugin the tests register implements every hook."""
    pm = manager(portal_plugins)
    missing = []
    for name, caller in sorted(all_hooks(pm).items()):
        implementers = [pm.get_name(impl.plugin) or "" for impl in caller.get_hookimpls()]
        from_tests = [
            impl
            for impl in caller.get_hookimpls()
            if Path(inspect.getfile(impl.function)).resolve().is_relative_to(TESTS.resolve())
        ]
        if not from_tests and not registered_in_a_test(name):
            missing.append(f"{name} (implemented by {implementers or 'nobody'})")
    assert not missing, "hooks no registered test plugin implements: " + ", ".join(missing)


@pytest.mark.parametrize("hook", CORE_HOOKS)
def test_each_core_hook_has_a_docstring(hook: str) -> None:
    assert inspect.getdoc(getattr(hookspecs, hook)), f"{hook} has no docstring"
