"""The sandbox gateway's per-merchant settings and the tokenization key they imply."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from portal.tenancy.models import MerchantView, Tenant

GATEWAY_KEY = "sandbox"

TokenizationKey = Annotated[str, msgspec.Meta(min_length=8, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]


class SandboxSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[isos.merchants.gateway.settings]`` when ``key = "sandbox"``."""

    tokenization_key: TokenizationKey | None = None
    """The public key the hosted fields send with each card; default ``sbx_pk_<merchant id>``.

    Public by design, like NMI's tokenization key: it only lets a page turn a card into a token
    for this merchant."""
    tokenize_limit_per_hour: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 300
    """Tokenizations allowed per hour from one client address for this merchant (then 429)."""


def tokenization_key(settings: SandboxSettings | None, merchant: MerchantView) -> str:
    """The merchant's tokenization key: the configured one or the one derived from its id."""
    if settings is not None and settings.tokenization_key:
        return settings.tokenization_key
    return f"sbx_pk_{merchant.id}"


def sandbox_settings_of(tenant: Tenant) -> SandboxSettings | None:
    """The merchant's sandbox settings; None when the merchant does not use the sandbox gateway."""
    choice: Any = tenant.gateway
    if choice is None or getattr(choice, "key", None) != GATEWAY_KEY:
        return None
    settings = choice.settings
    return settings if isinstance(settings, SandboxSettings) else SandboxSettings()
