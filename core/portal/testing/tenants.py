"""Tenants for tests: apply a tenant file given as TOML text, find a customer, sign one in."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.platform import Platform
from portal.tenancy.files import Change, TenantFile, apply_tenant_file, load_tenant_file
from portal.web.sessions import COOKIE_NAME, start_session


async def apply_tenants(platform: Platform, toml_text: str, tmp_path: Path, *, dry_run: bool = False) -> list[Change]:
    """Validate and apply a tenant file given as TOML text."""
    path = tmp_path / f"tenants-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(toml_text, encoding="utf-8")
    spec: TenantFile = load_tenant_file(path, platform.registry, platform.settings.base_domain)
    changes = await apply_tenant_file(spec, platform.registry, dry_run=dry_run, source=path.name)
    platform.tenants.invalidate()
    return changes


async def locate_merchant(merchant_slug: str) -> tuple[str, str]:
    """``(iso_id, merchant_id)`` of a merchant by slug (operator lookup, for tests)."""
    async with system_transaction():
        found = await fetch("SELECT * FROM portal_locate_merchant($1)", merchant_slug)
    assert found, f"no merchant {merchant_slug!r}"
    return str(found[0]["iso_id"]), str(found[0]["merchant_id"])


async def customer_id(merchant_slug: str, email: str) -> str:
    """The id of a merchant's customer by email (operator lookup, for tests)."""
    iso_id, merchant_id = await locate_merchant(merchant_slug)
    async with tenant_transaction(iso_id):
        rows = await fetch(
            "SELECT id FROM portal_customer WHERE merchant_id = $1 AND email_normalized = lower($2)",
            merchant_id,
            email,
        )
    return str(rows[0]["id"])


async def sign_in(platform: Platform, client: httpx.AsyncClient, email: str) -> str:
    """Give ``client`` a session as the customer with ``email`` at the client's merchant host."""
    host = client.base_url.host
    tenant = await platform.tenants.resolve(host)
    assert tenant is not None, f"no tenant at {host}"
    cid = await customer_id(tenant.merchant.slug, email)
    token = await start_session(tenant, cid, timedelta(hours=1))
    client.cookies.set(COOKIE_NAME, token, domain=host, path="/")
    return cid


@pytest.fixture
def portal_sign_in(portal_platform: Platform) -> Callable[[httpx.AsyncClient, str], Awaitable[str]]:
    """Sign a customer in on a client's host; await the fixture with the client and an email."""

    async def do(client: httpx.AsyncClient, email: str) -> str:
        return await sign_in(portal_platform, client, email)

    return do
