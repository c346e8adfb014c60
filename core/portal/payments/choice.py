"""Which gateway a merchant uses, and one live adapter per merchant and configuration."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import msgspec

from portal.payments.gateway import PaymentGatewayAdapter
from portal.plugins.registry import PluginRegistry, SettingsError
from portal.tenancy.models import Tenant

log = logging.getLogger(__name__)


class GatewayChoice(msgspec.Struct, frozen=True, kw_only=True):
    """A merchant's gateway: its key and validated settings (credentials stay out of templates)."""

    key: str
    settings: Any = None


class GatewayNotConfiguredError(LookupError):
    """The merchant has no (valid) payment gateway configured."""


def validate_gateway(registry: PluginRegistry, key: str, raw: dict[str, Any] | None) -> GatewayChoice:
    """Check that gateway ``key`` is installed and ``raw`` are valid settings for it."""
    gateway = registry.payment_gateways.get(key)
    if gateway is None:
        installed = ", ".join(sorted(registry.payment_gateways)) or "none"
        raise SettingsError(f"payment gateway {key!r} is not installed (installed: {installed})")
    if gateway.settings is None:
        if raw:
            raise SettingsError(f"payment gateway {key!r} takes no settings")
        return GatewayChoice(key=key)
    try:
        settings = msgspec.convert(dict(raw or {}), gateway.settings, strict=True)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"payment gateway {key!r} settings: {exc}") from exc
    return GatewayChoice(key=key, settings=settings)


class GatewayAdapters:
    """Adapters built on first use per merchant and reused (they hold HTTP connection pools)."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry
        self._adapters: dict[tuple[str, str], PaymentGatewayAdapter] = {}
        self._retired: list[PaymentGatewayAdapter] = []

    def for_tenant(self, tenant: Tenant) -> PaymentGatewayAdapter:
        """The merchant's adapter; :class:`GatewayNotConfiguredError` when it has no gateway."""
        choice = tenant.gateway
        if not isinstance(choice, GatewayChoice):
            raise GatewayNotConfiguredError(f"merchant {tenant.merchant.slug} has no payment gateway")
        fingerprint = hashlib.sha256(msgspec.json.encode([choice.key, choice.settings])).hexdigest()
        cache_key = (tenant.merchant.id, fingerprint)
        adapter = self._adapters.get(cache_key)
        if adapter is None:
            gateway = self.registry.payment_gateways[choice.key]
            adapter = gateway.factory(choice.settings, tenant.merchant)
            stale = [key for key in self._adapters if key[0] == tenant.merchant.id]
            for key in stale:  # settings changed: the old adapter is closed when the app stops
                self._retired.append(self._adapters.pop(key))
            self._adapters[cache_key] = adapter
        return adapter

    async def aclose(self) -> None:
        """Close every adapter built so far."""
        for adapter in [*self._adapters.values(), *self._retired]:
            try:
                await adapter.aclose()
            except Exception:
                log.exception("closing payment gateway adapter %s failed", adapter.key)
        self._adapters.clear()
        self._retired.clear()
