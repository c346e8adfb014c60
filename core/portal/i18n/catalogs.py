"""Gettext catalogs of core, plugins and themes, merged per theme and language.

Each package keeps its catalogs as ``locale/<language>/LC_MESSAGES/messages.po`` beside its
``templates`` folder (core: ``portal/locale``). They are read from the ``.po`` files themselves
(no compiled ``.mo`` in the repository) once per process. For a theme, the merged catalog takes
core's messages, then each plugin's, then the theme chain's from ``base`` to the theme itself,
so a later package's translation of the same message wins.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from portal.i18n.negotiate import DEFAULT_LANGUAGE
from portal.plugin import PluginInfo, ThemeSpec

CORE_LOCALE = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"


def plugin_locale(info: PluginInfo) -> Path | None:
    """A plugin's catalogs folder: ``locale`` as declared, else beside its templates."""
    if info.locale is not None:
        return info.locale
    return info.templates.parent / "locale" if info.templates is not None else None


def theme_locale(spec: ThemeSpec) -> Path:
    """A theme's catalogs folder: ``locale`` as declared, else beside its templates."""
    return spec.locale if spec.locale is not None else spec.templates.parent / "locale"


def po_path(locale_dir: Path, language: str) -> Path:
    """Where a package keeps its catalog of ``language``."""
    return locale_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_translations(path: Path) -> Translations | None:
    """The ``.po`` file at ``path`` as translations (fuzzy and empty entries left out), or ``None``."""
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        catalog = read_po(handle)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


class Catalogs:
    """The translations of every installed package, merged per (theme chain, language)."""

    def __init__(self, packages: Iterable[Path], themes: Mapping[str, Sequence[Path]]) -> None:
        """Catalogs of ``packages`` and ``themes``.

        ``packages``: the locale folders of core and the plugins, in merge order; ``themes``: per
        theme key, its chain's locale folders from the theme itself down to ``base``.
        """
        self._packages = tuple(packages)
        self._themes = {key: tuple(folders) for key, folders in themes.items()}
        self._merged: dict[tuple[str, str], Translations] = {}

    def translations(self, theme: str, language: str) -> Translations:
        """The merged catalog of ``language`` for pages in ``theme``."""
        key = (theme, language)
        merged = self._merged.get(key)
        if merged is None:
            merged = self._merge(theme, language)
            self._merged[key] = merged
        return merged

    def _merge(self, theme: str, language: str) -> Translations:
        merged = Translations(domain=DOMAIN)
        if language == DEFAULT_LANGUAGE:
            return merged  # messages are written in English
        folders = [*self._packages, *reversed(self._themes.get(theme, self._themes.get("base", ())))]
        for folder in folders:
            found = read_translations(po_path(folder, language))
            if found is not None:
                merged.merge(found)  # the messages only: the language's plural rule is taken below
                merged.plural = found.plural
        return merged
