"""Host to tenant: custom domain first, then ``<slug>.<base domain>``; cached with a TTL.

The cache is cleared at once when any process changes tenants (``NOTIFY
portal_tenants_changed`` from a trigger), and entries expire after the TTL regardless.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from portal.db.engine import fetch, json_value, system_transaction, tenant_transaction
from portal.db.listener import ReconnectingListener
from portal.payments.choice import GatewayChoice, validate_gateway
from portal.plugins.registry import PluginRegistry, SettingsError
from portal.tenancy.models import Brand, MerchantView, Tenant

log = logging.getLogger(__name__)

CHANNEL = "portal_tenants_changed"


def normalize_host(host: str) -> str:
    """Lower-case, without a trailing dot; the port is kept only for the base domain match."""
    return host.strip().rstrip(".").lower()


class TenantResolver:
    """Resolves and caches tenants by host."""

    def __init__(self, registry: PluginRegistry, base_domain: str, ttl: float) -> None:
        self.registry = registry
        self.base_domain = base_domain
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Tenant | None]] = {}
        self._merchants: dict[tuple[str, str], tuple[float, Tenant]] = {}
        self._listener: ReconnectingListener | None = None

    async def resolve(self, host: str) -> Tenant | None:
        """The active tenant answering on ``host``, or ``None``."""
        host = normalize_host(host)
        now = time.monotonic()
        cached = self._cache.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        tenant = await self._load(host)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[host] = (now + self.ttl, tenant)
        return tenant

    async def merchant(self, iso_id: str, merchant_id: str, *, max_age: float) -> Tenant | None:
        """:meth:`load_merchant`, reusing an active merchant loaded at most ``max_age`` seconds ago.

        For a worker's tasks, which would otherwise load the same merchant for every task. Tenant
        changes heard clear it as they clear the host cache; ``max_age`` (capped by the TTL) bounds
        how long a change missed meanwhile goes unseen.
        """
        key = (iso_id, merchant_id)
        now = time.monotonic()
        cached = self._merchants.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        tenant = await self.load_merchant(iso_id, merchant_id)
        if tenant is None:
            self._merchants.pop(key, None)
            return None
        if len(self._merchants) > 10_000:
            self._merchants.clear()
        self._merchants[key] = (now + min(max_age, self.ttl), tenant)
        return tenant

    def invalidate(self) -> None:
        """Forget every cached host and merchant."""
        self._cache.clear()
        self._merchants.clear()

    async def _load(self, host: str) -> Tenant | None:
        candidates = {host, host.split(":", 1)[0]}
        found: list[dict[str, Any]] = []
        async with system_transaction():
            for candidate in sorted(candidates, key=len, reverse=True):
                found = await fetch("SELECT * FROM portal_resolve_host($1, $2)", candidate, self.base_domain)
                if found:
                    break
        if not found:
            return None
        return await self.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])

    async def load_merchant(self, iso_id: str, merchant_id: str) -> Tenant | None:
        """Load a merchant and its enabled plugins within its ISO."""
        async with tenant_transaction(iso_id):
            rows = await fetch(
                """
                SELECT m.*, coalesce(
                    (SELECT jsonb_object_agg(a.plugin_key, a.settings)
                       FROM portal_plugin_activation a
                      WHERE a.merchant_id = m.id AND a.enabled), '{}'::jsonb) AS plugins,
                       (SELECT d.host FROM portal_merchant_domain d WHERE d.merchant_id = m.id
                         ORDER BY d.created_at, d.host LIMIT 1) AS custom_host
                  FROM portal_merchant m
                 WHERE m.id = $1 AND m.status = 'active'
                """,
                merchant_id,
            )
        if not rows:
            return None
        row = rows[0]
        return Tenant(merchant=_merchant_view(row), plugin_settings=self._settings(row), gateway=self._gateway(row))

    def _settings(self, row: dict[str, Any]) -> dict[str, Any]:
        activated: dict[str, Any] = json_value(row["plugins"])
        settings: dict[str, Any] = {}
        for key, raw in activated.items():
            if key not in self.registry.plugins:
                log.warning("merchant %s enables plugin %r, which is not loaded", row["slug"], key)
                continue
            try:
                settings[key] = self.registry.validate_settings(key, raw)
            except SettingsError as exc:
                log.error("merchant %s: %s; the plugin stays off there", row["slug"], exc)
        return settings

    def _gateway(self, row: dict[str, Any]) -> GatewayChoice | None:
        raw = json_value(row["gateway"])
        if not raw:
            return None
        try:
            return validate_gateway(self.registry, raw["key"], raw.get("settings"))
        except SettingsError as exc:
            log.error("merchant %s: %s; payments stay off there", row["slug"], exc)
            return None

    # --- invalidation -------------------------------------------------------------------

    async def listen(self, dsn: str) -> None:
        """Clear the cache whenever tenants change, in any process; reconnect if the link drops."""
        self._listener = ReconnectingListener(
            dsn,
            CHANNEL,
            lambda _payload: self.invalidate(),
            name="tenant changes",
            on_connect=self.invalidate,
            on_lost=self.invalidate,  # changes go unheard from now on: nothing cached can be trusted
        )
        if not await self._listener.start():
            log.warning(
                "cannot listen for tenant changes (%s); relying on the %ss TTL until it reconnects",
                self._listener.last_error,
                self.ttl,
            )

    @property
    def listening(self) -> bool:
        """True while tenant changes are heard (else cached tenants live out their TTL)."""
        return self._listener is not None and self._listener.connected

    async def close(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()


def _merchant_view(row: dict[str, Any]) -> MerchantView:
    return MerchantView(
        id=row["id"],
        iso_id=row["iso_id"],
        slug=row["slug"],
        name=row["name"],
        timezone=row["timezone"],
        locale=row["default_locale"],
        theme_key=row["theme_key"],
        custom_host=row["custom_host"],
        frame_ancestors=tuple(json_value(row["frame_ancestors"])),
        brand=Brand(
            color=row["brand_color"],
            accent=row["accent_color"],
            logo_url=row["logo_url"],
            support_email=row["support_email"],
            terms_url=row["terms_url"],
            privacy_url=row["privacy_url"],
        ),
    )
