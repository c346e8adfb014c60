"""Which language and locale a customer reads: link, then browser, then merchant."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError, negotiate_locale

LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "pt_BR")
"""Languages every page, email and PDF of core and the first-party plugins is written in."""
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "de": "Deutsch",
    "pt_BR": "Português (Brasil)",
}
"""Each language's name in itself, as a language switch lists them."""


@lru_cache(maxsize=512)
def _parse(tag: str) -> Locale | None:
    try:
        return Locale.parse(tag.strip().replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None


@lru_cache(maxsize=512)
def language_of(tag: str | None) -> str | None:
    """The supported language a locale tag is written in (``pt-BR`` → ``pt_BR``, ``de_AT`` → ``de``)."""
    if not tag:
        return None
    locale = _parse(tag)
    if locale is None:
        return None
    full = f"{locale.language}_{locale.territory}" if locale.territory else locale.language
    if full in LANGUAGES:
        return full
    if locale.language == "pt":
        return "pt_BR"
    return locale.language if locale.language in LANGUAGES else None


def _accepted(header: str) -> list[str]:
    """The tags of an ``Accept-Language`` header, most wanted first (q=0 left out)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


@lru_cache(maxsize=1024)
def choose_locale(chosen: str | None, accept_language: str | None, merchant_locale: str) -> tuple[str, str]:
    """``(locale, language)`` for a page or an email.

    The first of ``chosen`` (a language switch or a link's ``locale`` claim), the browser's
    ``Accept-Language`` and the merchant's locale that is in a supported language; English
    otherwise.

    The locale keeps its region when it has one (``de_AT`` formats money the Austrian way) and
    the language is its catalog (``de``).
    """
    candidates: list[str] = []
    if chosen:
        candidates.append(chosen)
    if accept_language:
        candidates.extend(_accepted(accept_language))
    candidates.append(merchant_locale)
    for tag in candidates:
        language = language_of(tag)
        if language is not None:
            locale = _parse(tag)
            assert locale is not None
            return str(locale), language
    fallback = negotiate_locale([merchant_locale.replace("-", "_")], ["en_US", "en"]) or "en"
    return fallback, DEFAULT_LANGUAGE
