"""Build the pluggy manager: hookspecs, entry-point discovery, ``PORTAL_LOAD_PLUGINS``.

The manager holds plugins and themes only; core's own event types and gateways are added by
:class:`portal.plugins.registry.PluginRegistry`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

import pluggy

from portal import hookspecs
from portal.plugin import PROJECT_NAME

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "portal"
THEME_PREFIX = "theme-"
"""Entry points named ``theme-<key>`` are theme packages: always loaded."""


class PluginLoadError(RuntimeError):
    """A plugin could not be loaded or implements a hook that does not exist."""


def discover() -> list[EntryPoint]:
    """Every entry point in the ``portal`` group, sorted by name."""
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def create_plugin_manager(
    load_plugins: Iterable[str] | None = None,
    extra_plugins: Iterable[tuple[str, object]] = (),
) -> pluggy.PluginManager:
    """Load installed plugins (restricted to ``load_plugins`` when given) plus ``extra_plugins``.

    ``extra_plugins`` registers objects directly under a name, replacing an installed plugin of the
    same name (the test suite's own ``theme-harbor`` stands in for the shipped theme);
    ``portal.testing`` uses it.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    wanted = None if load_plugins is None else set(load_plugins)
    found: set[str] = set()
    for entry_point in discover():
        found.add(entry_point.name)
        is_theme = entry_point.name.startswith(THEME_PREFIX)
        if wanted is not None and not is_theme and entry_point.name not in wanted:
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise PluginLoadError(f"plugin {entry_point.name!r} ({entry_point.value}) failed to import: {exc}") from exc
        if manager.get_plugin(entry_point.name) is None:
            manager.register(plugin, name=entry_point.name)
    if wanted is not None:
        missing = sorted(wanted - found - {name for name, _ in extra_plugins})
        if missing:
            raise PluginLoadError(f"PORTAL_LOAD_PLUGINS names plugins that are not installed: {', '.join(missing)}")
    for name, plugin in extra_plugins:
        if manager.get_plugin(name) is not None:  # an extra plugin replaces the installed one of its name
            manager.unregister(name=name)
        manager.register(plugin, name=name)
    manager.hook.portal_addhooks.call_historic(kwargs={"pluginmanager": manager})
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        name = manager.get_name(exc.plugin) or "?"
        raise PluginLoadError(f"plugin {name!r} implements an unknown hook: {exc}") from exc
    log.debug("loaded plugins: %s", ", ".join(name for name, _ in manager.list_name_plugin()))
    return manager
