"""Helpers for the security suite: minting links, API keys, and reading responses."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from portal.access.keys import signing_key
from portal.access.links import IssuedLink, issue_link
from portal.access.tokens import Claims, sign
from portal.api.keys import create_api_key
from portal.config import Settings
from portal.db.engine import fetch, tenant_transaction
from portal.platform import Platform
from portal.tenancy.models import Tenant
from portal.testing import customer_id

GREENFIELD = "t-greenfield.portal.localhost"
PINNACLE = "t-pinnacle.portal.localhost"
NORTHWIND = "t-northwind.portal.localhost"


def bearer(key: str) -> dict[str, str]:
    """The header that authenticates an API call with ``key``."""
    return {"Authorization": f"Bearer {key}"}


async def tenant_at(platform: Platform, host: str) -> Tenant:
    tenant = await platform.tenants.resolve(host)
    assert tenant is not None
    return tenant


async def mint(platform: Platform, host: str, *, purpose: str = "portal", **changes: object) -> str:
    """A token for Jane at ``host`` signed with the merchant's primary key, claims overridable."""
    tenant = await tenant_at(platform, host)
    jane = await customer_id(tenant.merchant.slug, "jane@globalco.com")
    now = int(datetime.now(UTC).timestamp())
    values: dict[str, object] = {
        "iso": tenant.merchant.iso_id,
        "merchant": tenant.merchant.id,
        "customer": jane,
        "purpose": purpose,
        "flow": None,
        "exp": now + 600,
        "iat": now,
        "jti": "test_" + secrets.token_hex(8),
    }
    values.update(changes)
    async with tenant_transaction(tenant.merchant.iso_id):
        kid, secret = await signing_key(tenant.merchant.iso_id, tenant.merchant.id)
    kid = str(values.pop("kid", kid))
    secret = str(values.pop("secret", secret))
    return sign(Claims(**values), kid, secret)  # type: ignore[arg-type]


async def issue(platform: Platform, host: str, **options: object) -> IssuedLink:
    tenant = await tenant_at(platform, host)
    jane = await customer_id(tenant.merchant.slug, "jane@globalco.com")
    async with tenant_transaction(tenant.merchant.iso_id):
        return await issue_link(platform.settings, tenant, jane, **options)  # type: ignore[arg-type]


async def api_key(platform: Platform, host: str | None, *, iso_host: str | None = None, scopes=None) -> str:
    """A merchant key for ``host``'s merchant, or an ISO key for ``iso_host``'s ISO."""
    tenant = await tenant_at(platform, host or iso_host)  # type: ignore[arg-type]
    async with tenant_transaction(tenant.merchant.iso_id):
        _, secret = await create_api_key(
            tenant.merchant.iso_id,
            tenant.merchant.id if host else None,
            scopes=scopes,
            known=platform.registry.api_scopes,  # core's scopes and the plugins', as `portal api-keys create`
        )
    return secret


def own_merchant(slug: str, *, plugins: tuple[str, ...] = ("cards",)) -> str:
    """A tenant file of one ISO ``<slug>`` with one merchant ``<slug>-shop`` (sandbox gateway, Jane)."""
    activations = "".join(f"[isos.merchants.plugins.{key}]\n" for key in plugins)
    return (
        f'[[isos]]\nslug = "{slug}"\nname = "{slug} ISO"\n\n'
        f'[[isos.merchants]]\nslug = "{slug}-shop"\nname = "{slug} shop"\n'
        f'[isos.merchants.gateway]\nkey = "sandbox"\n{activations}'
        '[[isos.merchants.customers]]\nemail = "jane@globalco.com"\nname = "Jane Cooper"\n'
    )


async def retire_webhooks(platform: Platform, host: str) -> None:
    """Disable every webhook endpoint of ``host``'s merchant and cancel its pending deliveries.

    For tests that let generated input create endpoints: no delivery worker a later test runs
    may ever send to an address such input named.
    """
    tenant = await tenant_at(platform, host)
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            "UPDATE portal_webhook_endpoint SET enabled = false, disabled_reason = 'deleted', secret = '' "
            "WHERE merchant_id = $1",
            tenant.merchant.id,
        )
        await fetch(
            "UPDATE portal_webhook_delivery SET status = 'cancelled', next_attempt_at = NULL "
            "WHERE merchant_id = $1 AND status = 'pending'",
            tenant.merchant.id,
        )


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def own_webhook_endpoints(portal_settings: Settings) -> AsyncIterator[None]:
    """Webhook endpoints a test creates are retired after it, wherever it created them.

    The shared tenants outlive every test of the process: an endpoint left subscribed there
    would collect deliveries from later tests (browser tests wait behind them).
    """
    connection = await asyncpg.connect(portal_settings.database_url)
    try:
        started = await connection.fetchval("SELECT clock_timestamp()")
        yield
        if await connection.fetchval("SELECT to_regclass('portal_webhook_endpoint')") is None:
            return  # nothing migrated yet: the test used no database
        retired = await connection.fetch(
            "UPDATE portal_webhook_endpoint SET enabled = false, disabled_reason = 'deleted', secret = '' "
            "WHERE created_at >= $1 AND disabled_reason IS DISTINCT FROM 'deleted' RETURNING id",
            started,
        )
        await connection.execute(
            "UPDATE portal_webhook_delivery SET status = 'cancelled', next_attempt_at = NULL "
            "WHERE endpoint_id = ANY($1::text[]) AND status = 'pending'",
            [row["id"] for row in retired],
        )
    finally:
        await connection.close()


@pytest_asyncio.fixture(loop_scope="session")
async def platform(shared_tenants: Platform) -> Platform:
    return shared_tenants


@pytest.fixture
def land(portal_client) -> Callable[[str, str], Awaitable[object]]:
    """``await land(host, token)``: GET the landing URL on ``host`` with a fresh client."""

    async def go(host: str, token: str):
        client = portal_client(host)
        response = await client.get(f"/access/{token}")
        return client, response

    return go


__all__ = [
    "GREENFIELD", "NORTHWIND", "PINNACLE", "api_key", "bearer", "issue", "mint", "own_merchant", "retire_webhooks",
    "tenant_at", "timedelta",
]  # fmt: skip
