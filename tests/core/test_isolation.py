"""Row-level security, as the application role: no ISO, no rows; ISO A never sees ISO B."""

from __future__ import annotations

import asyncpg
import pytest

from portal.access.links import issue_link
from portal.access.ratelimit import allow, bucket_key
from portal.api.keys import create_api_key
from portal.db.engine import TenantScopeError, fetch, system_transaction, tenant_transaction
from portal.platform import Platform
from portal.testing import customer_id

TENANT_TABLES = [
    "portal_merchant",
    "portal_merchant_domain",
    "portal_customer",
    "portal_plugin_activation",
    "portal_session",
    "portal_signing_key",
    "portal_link",
    "portal_api_key",
    "portal_rate_counter",
]


async def _iso_id(slug: str) -> str:
    async with system_transaction():
        rows = await fetch("SELECT portal_iso_id_for_slug($1) AS id", slug)
    return str(rows[0]["id"])


async def test_the_app_connects_as_a_role_that_cannot_bypass_rls(shared_tenants: Platform) -> None:
    rows = await fetch("SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    assert rows == [{"name": "portal_app", "rolsuper": False, "rolbypassrls": False}]


@pytest.mark.parametrize("table", ["portal_iso", *TENANT_TABLES])
async def test_no_iso_set_returns_no_rows(shared_tenants: Platform, table: str) -> None:
    assert await fetch(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    async with system_transaction():
        assert await fetch(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]


async def _populate(platform: Platform, host: str) -> None:
    """Give the merchant at ``host`` a row in every access table."""
    tenant = await platform.tenants.resolve(host)
    assert tenant is not None
    jane = await customer_id(tenant.merchant.slug, "jane@globalco.com")
    async with tenant_transaction(tenant.merchant.iso_id):
        await issue_link(platform.settings, tenant, jane)
        await create_api_key(tenant.merchant.iso_id, tenant.merchant.id)
        await allow(tenant.merchant.iso_id, bucket_key("isolation-test", host), 100)


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_an_iso_sees_only_its_own_rows(
    shared_tenants: Platform, portal_client, portal_sign_in, table: str
) -> None:
    for host in ("t-greenfield.portal.localhost", "t-northwind.portal.localhost"):
        await portal_sign_in(portal_client(host), "jane@globalco.com")
        await _populate(shared_tenants, host)
    harbor, summit = await _iso_id("t-harbor"), await _iso_id("t-summit")
    async with tenant_transaction(harbor):
        harbor_rows = await fetch(f"SELECT iso_id FROM {table}")
    async with tenant_transaction(summit):
        summit_rows = await fetch(f"SELECT iso_id FROM {table}")
    assert harbor_rows and {r["iso_id"] for r in harbor_rows} == {harbor}
    if table != "portal_merchant_domain":  # Summit has no custom domain
        assert summit_rows and {r["iso_id"] for r in summit_rows} == {summit}
    else:
        assert summit_rows == []


async def test_same_email_at_two_isos_stays_apart(shared_tenants: Platform) -> None:
    harbor = await _iso_id("t-harbor")
    async with tenant_transaction(harbor):
        rows = await fetch("SELECT name FROM portal_customer WHERE email_normalized = 'jane@globalco.com'")
    assert rows and all(r["name"] == "Jane Cooper" for r in rows)  # never Summit's "Jane Summit"


async def test_writes_into_another_iso_are_refused(shared_tenants: Platform) -> None:
    harbor, summit = await _iso_id("t-harbor"), await _iso_id("t-summit")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(harbor):
            await fetch(
                "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
                "SELECT 'cus_x', $1, id, 'x@x.test', 'x@x.test', 'X' FROM portal_merchant LIMIT 1",
                summit,
            )
    async with tenant_transaction(harbor):
        updated = await fetch("UPDATE portal_customer SET name = 'hijacked' WHERE iso_id = $1 RETURNING id", summit)
    assert updated == []


async def test_a_transaction_serves_one_iso(shared_tenants: Platform) -> None:
    harbor, summit = await _iso_id("t-harbor"), await _iso_id("t-summit")
    with pytest.raises(TenantScopeError):
        async with tenant_transaction(harbor), tenant_transaction(summit):
            pass


async def test_the_app_role_cannot_turn_rls_off(shared_tenants: Platform) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await fetch("ALTER TABLE portal_customer DISABLE ROW LEVEL SECURITY")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await fetch("SET ROLE portal_resolver")
