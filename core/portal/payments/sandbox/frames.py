"""The hosted field pages: one labelled input per frame, styled with the merchant's CSS options.

Without options a frame follows the page's colour scheme and rings the focused input in the
merchant's brand colour, adjusted to read on each scheme's background.

The styles arrive as Collect.js options (``customCss``, ``focusCss``, ...) in the frame's URL.
Only plain declarations survive: a property name and a value without characters that could
end a rule, open a URL or leave the ``<style>`` element; anything else is dropped, as a browser
drops a declaration it cannot parse.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import msgspec
from markupsafe import Markup

from portal.payments.sandbox.cards import TEST_CARDS

TEMPLATES = Path(__file__).resolve().parent / "templates"

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class FieldSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One hosted field: its defaults and the input's attributes."""

    name: str
    title: str
    placeholder: str
    autocomplete: str
    maxlength: int


FIELD_SPECS = {
    "ccnumber": FieldSpec(
        name="ccnumber", title="Card number", placeholder="0000 0000 0000 0000", autocomplete="cc-number", maxlength=23
    ),
    "ccexp": FieldSpec(
        name="ccexp", title="Expiration date", placeholder="MM / YY", autocomplete="cc-exp", maxlength=9
    ),
    "cvv": FieldSpec(name="cvv", title="Security code", placeholder="CVV", autocomplete="cc-csc", maxlength=4),
}

STYLE_GROUPS = {
    "custom": "input",
    "focus": "input:focus",
    "invalid": 'input[aria-invalid="true"]',
    "valid": "input.is-valid",
    "placeholder": "input::placeholder",
}
"""Collect.js style option (without ``Css``) to the selector it styles inside the frame."""

MAX_CSS_PARAMETER = 4000
MAX_DECLARATIONS = 40
_PROPERTY = re.compile(r"^-?[a-z]+(?:-[a-z]+)*$")
_VALUE = re.compile(r"^[A-Za-z0-9#%.,()'\"!/ _+-]{1,200}$")
_FORBIDDEN = ("url(", "image(", "image-set(", "expression(", "/*", "*/")
_INSTANCE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _declaration(name: Any, value: Any) -> str | None:
    if not isinstance(name, str) or len(name) > 40 or not _PROPERTY.match(name):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    lowered = text.lower()
    if not _VALUE.match(text) or any(bad in lowered for bad in _FORBIDDEN):
        return None
    if text.count("'") % 2 or text.count('"') % 2:
        return None
    return f"{name}: {text};"


def merchant_css(parameter: str) -> str:
    """The rules built from a frame's ``css`` parameter: JSON of style group to declarations."""
    if not parameter or len(parameter) > MAX_CSS_PARAMETER:
        return ""
    try:
        groups = msgspec.json.decode(parameter)
    except msgspec.DecodeError:
        return ""
    if not isinstance(groups, dict):
        return ""
    rules = []
    for group, selector in STYLE_GROUPS.items():
        declarations = groups.get(group)
        if not isinstance(declarations, dict):
            continue
        kept = [d for d in (_declaration(k, v) for k, v in list(declarations.items())[:MAX_DECLARATIONS]) if d]
        if kept:
            rules.append(f"{selector} {{ {' '.join(kept)} }}")
    return "\n".join(rules)


def _colour(value: str, default: str) -> str:
    return value if _HEX_COLOUR.match(value) else default


def instance_id(value: str) -> str:
    """The configuration instance the frames of one form share; empty when malformed."""
    return value if _INSTANCE.match(value) else ""


def render_field(
    spec: FieldSpec,
    *,
    title: str,
    placeholder: str,
    css: str,
    lang: str,
    nonce: str,
    instance: str,
    tokenization_key: str,
    focus_color: str = "#1d4ed8",
    focus_color_dark: str = "#8fb0ff",
) -> str:
    """The HTML of one field frame; the card number frame also gets the test card numbers it accepts."""
    template = _ENVIRONMENT.get_template("field.html")
    return template.render(
        field=spec,
        title=title,
        placeholder=placeholder,
        css=Markup(css),  # noqa: S704 - built from declarations checked above, no '<' possible
        lang=lang,
        nonce=nonce,
        instance=instance,
        tokenization_key=tokenization_key,
        focus_color=_colour(focus_color, "#1d4ed8"),
        focus_color_dark=_colour(focus_color_dark, "#8fb0ff"),
        test_cards=" ".join(TEST_CARDS) if spec.name == "ccnumber" else "",
    )
