"""Read models of tenants: frozen Structs that templates and hooks receive."""

from __future__ import annotations

from typing import Any

import msgspec


class Brand(msgspec.Struct, frozen=True, kw_only=True):
    """A merchant's brand as templates use it."""

    color: str
    contrast_color: str
    """Text colour readable on ``color`` (white or near-black, whichever contrasts more)."""
    logo_url: str | None = None
    support_email: str | None = None
    terms_url: str | None = None
    privacy_url: str | None = None


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
    """White or near-black, whichever has the higher WCAG contrast against ``hex_color``."""
    red, green, blue = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    luminance = 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)
    dark = 0.0069  # luminance of #111111
    on_white = 1.05 / (luminance + 0.05)
    on_dark = (luminance + 0.05) / (dark + 0.05)
    return "#ffffff" if on_white >= on_dark else "#111111"


def normalize_email(email: str) -> str:
    """The form two addresses of one person share: trimmed and lower-cased."""
    return email.strip().lower()
