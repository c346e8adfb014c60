"""The HTML of every page and email template, per shipped theme, in English and Spanish, as reviewed.

Each template renders through the theme's own environment with the sample data of
``portal themes check`` (a merchant of the theme, a signed-in customer; page variables without a
sample render empty), so the snapshot holds each theme's structure and wording. A change to any
template, stylesheet link or translation shows here as a snapshot diff to review, and is accepted
with ``uv run pytest tests/themes/test_page_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import pytest

from portal.config import load_settings
from portal.i18n.current import use_translations
from portal.platform import Platform
from portal.theming.check import SampleUndefined, sample_context, template_sources

THEMES = ("base", "harbor", "summit")
LANGUAGES = (("en", "en_US"), ("es", "es"))


@pytest.fixture(scope="module")
def shipped() -> Platform:
    """The platform as installed: first-party plugins and themes, no test plugins."""
    return Platform(load_settings())


def _pages(shipped: Platform, theme: str) -> list[str]:
    """Every page, email and PDF template (not partials, macros, plain text or stylesheets)."""
    return [
        name
        for name in template_sources(shipped.themes, theme)
        if name.endswith(".html") and not name.startswith("partials/") and not name.endswith("macros.html")
    ]


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize(("language", "locale"), LANGUAGES, ids=[language for language, _ in LANGUAGES])
def test_every_page_renders_as_reviewed(shipped: Platform, theme: str, language: str, locale: str, snapshot) -> None:
    environment = shipped.themes.environment(theme).overlay(undefined=SampleUndefined, cache_size=0)
    context = {**sample_context(theme), "lang": locale.replace("_", "-"), "language": language}
    rendered: dict[str, str] = {}
    with use_translations(shipped.catalogs.translations(theme, language), locale, language):
        for name in _pages(shipped, theme):
            rendered[name] = environment.get_template(name).render(context)
    assert len(rendered) > 30
    assert rendered == snapshot
