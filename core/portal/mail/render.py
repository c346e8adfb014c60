"""Render a merchant's email from its theme: subject, plain text and HTML."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from gettext import NullTranslations
from typing import Any

import jinja2

from portal.i18n import choose_locale
from portal.i18n.catalogs import Catalogs
from portal.i18n.current import use_translations
from portal.tenancy.models import MerchantView
from portal.theming.engine import ThemeRegistry

_PLAIN: weakref.WeakKeyDictionary[jinja2.Environment, jinja2.Environment] = weakref.WeakKeyDictionary()


def _plain_environment(environment: jinja2.Environment) -> jinja2.Environment:
    """The theme's environment without HTML escaping, for the subject and the text part.

    Theme environments escape everything; in plain text that would turn "Smith & Sons" into
    "Smith &amp; Sons". The overlay shares the loader, globals and filters.
    """
    plain = _PLAIN.get(environment)
    if plain is None:
        plain = environment.overlay(autoescape=False)
        _PLAIN[environment] = plain
    return plain


def render_email(
    themes: ThemeRegistry,
    merchant: MerchantView,
    name: str,
    context: Mapping[str, Any],
    *,
    catalogs: Catalogs | None = None,
    locale: str | None = None,
) -> tuple[str, str, str]:
    """``(subject, text, html)`` of email ``name`` in the merchant's theme.

    Renders ``email/<name>.subject.txt``, ``email/<name>.txt`` and ``email/<name>.html`` (a
    ``name`` with a slash is a path of its own: a plugin's ``payment_recovery/email/dunning``); the
    theme falls back to ``base`` when the merchant's is not installed. The templates receive
    ``context`` plus ``merchant``, ``lang`` and (text and HTML) ``subject``. It is written in
    ``locale`` (the customer's) when it is in a supported language, else in the merchant's, with
    the translations of ``catalogs`` (English without them).
    """
    theme = merchant.theme_key if merchant.theme_key in themes.themes else "base"
    chosen, language = choose_locale(locale, None, merchant.locale)
    translations = catalogs.translations(theme, language) if catalogs is not None else NullTranslations()
    with use_translations(translations, chosen, language):
        return _render(themes.environment(theme), merchant, name, context, chosen)


def _render(
    environment: jinja2.Environment, merchant: MerchantView, name: str, context: Mapping[str, Any], locale: str
) -> tuple[str, str, str]:
    plain = _plain_environment(environment)
    values: dict[str, Any] = {**context, "merchant": merchant, "lang": locale.replace("_", "-")}
    base = name if "/" in name else f"email/{name}"
    subject = " ".join(plain.get_template(f"{base}.subject.txt").render(values).split())
    values["subject"] = subject
    text = plain.get_template(f"{base}.txt").render(values).strip() + "\n"
    html = environment.get_template(f"{base}.html").render(values)
    return subject, text, html
