"""Plugins and themes are found through the ``portal`` entry-point group."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from portal.plugins.manager import PluginLoadError, create_plugin_manager, discover
from portal.plugins.registry import PluginRegistry
from support.distributions import write_distribution


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site folder on sys.path holding the example plugin and a theme as distributions."""
    write_distribution(tmp_path, "portal-example", {"example": "support.example_plugin"})
    write_distribution(tmp_path, "portal-theme-harbor", {"theme-harbor": "support.example_theme"})
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_first_party_base_theme_is_an_entry_point() -> None:
    names = {ep.name: ep.value for ep in discover()}
    assert names.get("theme-base") == "portal_theme_base"


def test_installed_plugins_and_themes_are_discovered(installed: Path) -> None:
    registry = PluginRegistry(create_plugin_manager())
    assert "example" in registry.plugins
    assert {"base", "harbor"} <= set(registry.themes)
    example = next(ep for ep in metadata.entry_points(group="portal") if ep.name == "example")
    assert example.dist is not None and example.dist.version == "1.0"


def test_load_plugins_restricts_feature_plugins_but_keeps_themes(installed: Path) -> None:
    registry = PluginRegistry(create_plugin_manager(load_plugins=()))
    assert registry.plugins == {}
    assert {"base", "harbor"} <= set(registry.themes)
    assert "support.example_plugin" in sys.modules  # imported by the previous test, but not registered now


def test_load_plugins_naming_an_uninstalled_plugin_fails(installed: Path) -> None:
    with pytest.raises(PluginLoadError, match="not installed: nope"):
        create_plugin_manager(load_plugins=["example", "nope"])


def test_an_implementation_of_an_unknown_hook_fails_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_distribution(tmp_path, "portal-bad", {"bad": "support.bad_plugin"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match="'bad' implements an unknown hook"):
        create_plugin_manager()


def test_a_plugin_that_fails_to_import_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_distribution(tmp_path, "portal-broken", {"broken": "support.does_not_exist"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match="'broken' .* failed to import"):
        create_plugin_manager()


def test_plugin_key_must_match_its_entry_point(installed: Path) -> None:
    import support.example_plugin

    with pytest.raises(PluginLoadError, match="declares key 'example'"):
        PluginRegistry(create_plugin_manager(load_plugins=(), extra_plugins=[("other", support.example_plugin)]))


def test_portal_addhooks_lets_a_plugin_add_hookspecs() -> None:
    import types

    from portal.plugin import hookimpl

    specs = types.ModuleType("extra_specs")
    exec(
        "import pluggy\nhookspec = pluggy.HookspecMarker('portal')\n"
        "@hookspec\ndef portal_extra_thing():\n    '''An extra hook.'''\n",
        specs.__dict__,
    )
    adder = types.ModuleType("adder")
    adder.portal_addhooks = hookimpl(lambda pluginmanager: pluginmanager.add_hookspecs(specs))  # type: ignore[attr-defined]
    user = types.ModuleType("user")
    user.portal_extra_thing = hookimpl(lambda: "hello")  # type: ignore[attr-defined]
    manager = create_plugin_manager(load_plugins=(), extra_plugins=[("adder", adder), ("user", user)])
    assert manager.hook.portal_extra_thing() == ["hello"]
