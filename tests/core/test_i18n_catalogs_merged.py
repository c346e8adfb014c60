"""Merged catalogs keep each language's own plural rule (French and Portuguese say "0 minute")."""

from __future__ import annotations

import pytest

from portal.config import load_settings
from portal.platform import Platform

SINGULAR, PLURAL = (
    "The link expires in %(count)s minute and works once.",
    "The link expires in %(count)s minutes and works once.",
)


@pytest.fixture(scope="module")
def shipped() -> Platform:
    """The platform as installed: first-party plugins and themes, no test plugins."""
    return Platform(load_settings())


@pytest.mark.parametrize(
    ("language", "zero", "two"),
    [
        ("fr", "Le lien expire dans %(count)s minute et", "Le lien expire dans %(count)s minutes et"),
        ("de", "%(count)s Minuten ab", "%(count)s Minuten ab"),
        ("pt_BR", "%(count)s minuto e", "%(count)s minutos e"),
    ],
)
def test_plural_forms_follow_the_language(shipped: Platform, language: str, zero: str, two: str) -> None:
    for theme in ("base", "harbor", "summit"):
        translations = shipped.catalogs.translations(theme, language)
        assert zero in translations.ngettext(SINGULAR, PLURAL, 0)
        assert two in translations.ngettext(SINGULAR, PLURAL, 2)
