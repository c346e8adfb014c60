"""Render a merchant's email from its theme: subject, plain text and HTML."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import jinja2

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
    themes: ThemeRegistry, merchant: MerchantView, name: str, context: Mapping[str, Any]
) -> tuple[str, str, str]:
    """``(subject, text, html)`` of email ``name`` in the merchant's theme.

    Renders ``email/<name>.subject.txt``, ``email/<name>.txt`` and ``email/<name>.html`` (a
    ``name`` with a slash is a path of its own: a plugin's ``payment_recovery/email/dunning``); the
    theme falls back to ``base`` when the merchant's is not installed. The templates receive
    ``context`` plus ``merchant``, ``lang`` and (text and HTML) ``subject``.
    """
    theme = merchant.theme_key if merchant.theme_key in themes.themes else "base"
    environment = themes.environment(theme)
    plain = _plain_environment(environment)
    values: dict[str, Any] = {
        **context,
        "merchant": merchant,
        "lang": merchant.locale.replace("_", "-") or "en",
    }
    base = name if "/" in name else f"email/{name}"
    subject = " ".join(plain.get_template(f"{base}.subject.txt").render(values).split())
    values["subject"] = subject
    text = plain.get_template(f"{base}.txt").render(values).strip() + "\n"
    html = environment.get_template(f"{base}.html").render(values)
    return subject, text, html
