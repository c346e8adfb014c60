"""The translations of the text being written now (a request, an email), in a context variable."""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InUse:
    """Translations with the locale they were chosen for (``es``, ``pt_BR``, ``en_US``)."""

    translations: _gettext.NullTranslations
    locale: str
    language: str


_NULL = InUse(_gettext.NullTranslations(), "en", "en")
_CURRENT: ContextVar[InUse] = ContextVar("portal_translations", default=_NULL)


@contextmanager
def use_translations(translations: _gettext.NullTranslations, locale: str, language: str) -> Iterator[None]:
    """Write in ``language`` (its catalog ``translations``) and format for ``locale`` inside the block."""
    token = _CURRENT.set(InUse(translations, locale, language))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def set_translations(translations: _gettext.NullTranslations, locale: str, language: str) -> None:
    """Write in ``language`` for the rest of the current context (a request's task)."""
    _CURRENT.set(InUse(translations, locale, language))


def current_locale() -> str:
    """The Babel locale money and dates are written in now (``en_US``, ``de_DE``, ``pt_BR``)."""
    return _CURRENT.get().locale


def current_language() -> str:
    """The language text is written in now: one of ``portal.i18n.LANGUAGES``."""
    return _CURRENT.get().language


def gettext(message: str) -> str:
    """``message`` in the current language."""
    return _CURRENT.get().translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """``singular`` or ``plural`` for ``n`` (a whole number), in the current language."""
    return _CURRENT.get().translations.ngettext(singular, plural, int(n))


def pgettext(context: str, message: str) -> str:
    """``message`` in the current language, as meant in ``context``."""
    return _CURRENT.get().translations.pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    """``ngettext`` with a context."""
    return _CURRENT.get().translations.npgettext(context, singular, plural, int(n))


def N_(message: str) -> str:  # noqa: N802 - the conventional name extractors look for
    """Mark ``message`` for translation where it is defined; translate it where it is shown."""
    return message
