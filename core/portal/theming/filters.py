"""Jinja filters every theme can use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portal.i18n import gettext


def translate(text: str) -> str:
    """A message given as data (a plugin's nav label, a widget title) in the request's language.

    Unlike ``_()``, the result is plain text (escaped like any value) and is not ``%``-formatted,
    so a label such as "50% off" or one holding ``<`` is shown as written.
    """
    return gettext(str(text))


TEMPLATE_FILTERS: dict[str, Callable[..., Any]] = {"translate": translate}
