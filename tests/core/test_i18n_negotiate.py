"""``portal.i18n.choose_locale``: the link's (or switch's) language, then the browser's, then the merchant's."""

from __future__ import annotations

import pytest

from portal.i18n import choose_locale, language_of


def test_a_link_claim_beats_accept_language_which_beats_the_merchant() -> None:
    assert choose_locale("fr", "es-ES,es;q=0.9", "de_DE") == ("fr", "fr")
    assert choose_locale(None, "es-ES,es;q=0.9", "de_DE") == ("es_ES", "es")
    assert choose_locale(None, None, "de_DE") == ("de_DE", "de")
    assert choose_locale("", "", "pt_BR") == ("pt_BR", "pt_BR")


def test_accept_language_is_read_by_preference() -> None:
    assert choose_locale(None, "da, fr;q=0.4, de;q=0.8", "en_US") == ("de", "de")
    assert choose_locale(None, "es;q=0, fr;q=0.1", "en_US") == ("fr", "fr"), "q=0 means not wanted"
    assert choose_locale(None, "*, es;q=0.5", "en_US") == ("es", "es")


@pytest.mark.parametrize("tag", ["pt-BR", "pt_BR", "pt", "pt-PT"])
def test_portuguese_is_written_in_brazilian_portuguese(tag: str) -> None:
    locale, language = choose_locale(None, tag, "en_US")
    assert language == "pt_BR"
    assert locale == {"pt-BR": "pt_BR", "pt_BR": "pt_BR", "pt": "pt", "pt-PT": "pt_PT"}[tag]
    assert language_of(tag) == "pt_BR"


def test_a_region_is_kept_for_formatting_while_the_language_picks_the_catalog() -> None:
    assert choose_locale(None, "de-AT", "en_US") == ("de_AT", "de")
    assert choose_locale("fr-CA", None, "en_US") == ("fr_CA", "fr")
    assert choose_locale(None, None, "es_MX") == ("es_MX", "es")


@pytest.mark.parametrize("chosen", ["xx", "klingon", "ja", "", "../../etc/passwd", "de_ZZ_bad!"])
def test_unknown_or_unsupported_tags_fall_back(chosen: str) -> None:
    assert choose_locale(chosen, "nl-NL, xx", "es_ES") == ("es_ES", "es"), "on to the merchant's language"
    assert choose_locale(chosen, None, "ja_JP") == ("en", "en"), "English when the merchant's is not offered"
    assert choose_locale(chosen, None, "en_GB") == ("en_GB", "en")
