"""Template lookup for a theme.

In order: the theme chain (the theme, its parents, ``base``), plugin templates
(``<plugin key>/...``), then core.

Any layer can also be named explicitly, which is how an override extends what it replaces:
``{% extends "base:layout.html" %}`` (a theme), ``{% extends "plugin:cards/list.html" %}``
(a plugin's own template) or ``{% extends "core:error.html" %}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from portal import i18n
from portal.plugin import ThemeSpec

CORE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
RESERVED_NAMESPACES = frozenset({"plugin", "core"})


class ThemeError(RuntimeError):
    """A theme is missing, has an unknown parent or forms a cycle."""


class ThemeRegistry:
    """The installed themes and a cached Jinja environment for each."""

    def __init__(
        self,
        themes: Mapping[str, ThemeSpec],
        plugin_templates: Mapping[str, Path],
        globals_: Mapping[str, Any] | None = None,
        filters: Mapping[str, Callable[..., Any]] | None = None,
        auto_reload: bool = False,
    ) -> None:
        if "base" not in themes:
            raise ThemeError("the base theme (portal-theme-base) is not installed")
        for key in themes:
            if key in RESERVED_NAMESPACES:
                raise ThemeError(f"theme key {key!r} is reserved")
        self.themes = dict(themes)
        self.plugin_templates = dict(plugin_templates)
        self._globals = dict(globals_ or {})
        self._filters = dict(filters or {})
        self._auto_reload = auto_reload
        self._chains = {key: self._resolve_chain(key) for key in self.themes}
        self._environments: dict[str, jinja2.Environment] = {}

    def _resolve_chain(self, key: str) -> tuple[ThemeSpec, ...]:
        chain: list[ThemeSpec] = []
        seen: set[str] = set()
        current: str | None = key
        while current is not None:
            if current in seen:
                raise ThemeError(f"theme {key!r}: parent cycle through {current!r}")
            spec = self.themes.get(current)
            if spec is None:
                raise ThemeError(f"theme {chain[-1].key!r} names parent {current!r}, which is not installed")
            seen.add(current)
            chain.append(spec)
            current = spec.parent if spec.key != "base" else None
        if chain[-1].key != "base":
            raise ThemeError(f"theme {key!r} does not end in the base theme")
        return tuple(chain)

    def chain(self, key: str) -> tuple[ThemeSpec, ...]:
        """The theme, its parents and ``base``, most specific first."""
        try:
            return self._chains[key]
        except KeyError:
            raise ThemeError(f"theme {key!r} is not installed") from None

    def environment(self, key: str) -> jinja2.Environment:
        """The Jinja environment of theme ``key``, built once and reused."""
        environment = self._environments.get(key)
        if environment is None:
            environment = self._build(key)
            self._environments[key] = environment
        return environment

    def _build(self, key: str) -> jinja2.Environment:
        chain = self.chain(key)
        plugins = jinja2.PrefixLoader(
            {name: jinja2.FileSystemLoader(path) for name, path in self.plugin_templates.items()}, delimiter="/"
        )
        core = jinja2.FileSystemLoader(CORE_TEMPLATES)
        explicit: dict[str, jinja2.BaseLoader] = {spec.key: jinja2.FileSystemLoader(spec.templates) for spec in chain}
        explicit.update(plugin=plugins, core=core)
        loader = jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader([spec.templates for spec in chain]),
                plugins,
                core,
                jinja2.PrefixLoader(explicit, delimiter=":"),
            ]
        )
        environment = jinja2.Environment(
            loader=loader,
            autoescape=True,
            auto_reload=self._auto_reload,
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"],
        )
        environment.install_gettext_callables(  # type: ignore[attr-defined]
            i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext, npgettext=i18n.npgettext
        )
        environment.globals.update(self._globals)
        environment.globals["static_url"] = self._static_url_function(chain)
        environment.globals["theme_key"] = key
        environment.filters.update(self._filters)
        return environment

    def _static_url_function(self, chain: tuple[ThemeSpec, ...]) -> Callable[[str], str]:
        cache: dict[str, str] = {}

        def static_url(path: str) -> str:
            """URL of a theme static file, taken from the first theme in the chain that has it."""
            url = cache.get(path)
            if url is None:
                url = f"/static/themes/base/{path}"
                for spec in chain:
                    if spec.static is not None and (spec.static / path).is_file():
                        url = f"/static/themes/{spec.key}/{path}"
                        break
                cache[path] = url
            return url

        return static_url

    def render(self, key: str, template: str, context: Mapping[str, Any]) -> str:
        """Render ``template`` with theme ``key``."""
        return self.environment(key).get_template(template).render(context)
