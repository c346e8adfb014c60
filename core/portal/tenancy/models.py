"""Read models of tenants: frozen Structs that templates and hooks receive."""

from __future__ import annotations

from typing import Any

import msgspec

from portal.tenancy.colours import on_surface, palette


class Brand(msgspec.Struct, frozen=True, kw_only=True):
    """A merchant's brand as templates use it.

    Built from the merchant's chosen ``color`` (and optional ``accent``); the colours that read
    are derived once, when the merchant is loaded (see :mod:`portal.tenancy.colours`).
    """

    color: str
    """Brand surface colour (buttons, current navigation item): the chosen colour, or that
    colour darkened or lightened until ``contrast_color`` reaches 4.5:1 on it."""
    contrast_color: str = ""
    """Text colour on ``color``: ``#ffffff`` or ``#111111``."""
    accent: str | None = None
    """Accent surface colour; the brand surface when the merchant has no accent."""
    logo_url: str | None = None
    support_email: str | None = None
    terms_url: str | None = None
    privacy_url: str | None = None
    chosen_color: str = ""
    """The brand colour as the tenant file gives it."""
    chosen_accent: str | None = None
    """The accent as the tenant file gives it, or ``None``."""
    text: str = ""
    """Brand colour for text and links on the light page background (4.5:1)."""
    text_dark: str = ""
    """Brand colour for text and links on the dark page background (4.5:1)."""
    accent_contrast: str = ""
    """Text colour on ``accent``."""
    accent_text: str = ""
    """Accent for text on the light page background (4.5:1)."""
    accent_text_dark: str = ""
    """Accent for text on the dark page background (4.5:1)."""

    def __post_init__(self) -> None:
        # Built again from its own fields (a copy), a brand keeps what was chosen.
        chosen = (self.chosen_color or self.color).lower()
        chosen_accent = (self.chosen_accent if self.chosen_color else self.accent) or None
        chosen_accent = chosen_accent.lower() if chosen_accent else None
        brand = palette(chosen)
        accent = palette(chosen_accent) if chosen_accent else brand
        for name, value in (
            ("chosen_color", chosen),
            ("chosen_accent", chosen_accent),
            ("color", brand.surface),
            ("contrast_color", brand.on_surface),
            ("text", brand.text),
            ("text_dark", brand.text_dark),
            ("accent", accent.surface),
            ("accent_contrast", accent.on_surface),
            ("accent_text", accent.text),
            ("accent_text_dark", accent.text_dark),
        ):
            msgspec.structs.force_setattr(self, name, value)


class MerchantView(msgspec.Struct, frozen=True, kw_only=True):
    """A merchant resolved from a host."""

    id: str
    iso_id: str
    slug: str
    name: str
    timezone: str
    locale: str
    theme_key: str
    brand: Brand
    custom_host: str | None = None
    """The merchant's first custom domain, used in links when set."""
    frame_ancestors: tuple[str, ...] = ()
    """Origins allowed to embed the portal; empty: none."""


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    """What a request on a merchant host needs: the merchant and its enabled plugins."""

    merchant: MerchantView
    plugin_settings: dict[str, Any]
    """Enabled plugin key to its validated settings Struct (or ``None`` when it has none)."""
    gateway: Any = None
    """The merchant's payment gateway (:class:`portal.payments.choice.GatewayChoice`), if any.

    Kept off :class:`MerchantView` so credentials never reach a template context."""

    @property
    def enabled_plugins(self) -> frozenset[str]:
        """Keys of the plugins that are on for this merchant."""
        return frozenset(self.plugin_settings)


class CustomerView(msgspec.Struct, frozen=True, kw_only=True):
    """The signed-in customer."""

    id: str
    merchant_id: str
    email: str
    name: str


def contrast_color(hex_color: str) -> str:
    """White or near-black text for a brand surface of ``hex_color`` (see :func:`on_surface`)."""
    return on_surface(hex_color)[1]


def normalize_email(email: str) -> str:
    """The form two addresses of one person share: trimmed and lower-cased."""
    return email.strip().lower()
