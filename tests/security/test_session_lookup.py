"""The one-statement session lookup: row-level security still decides, and the tenant scope is given back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from security.conftest import GREENFIELD, NORTHWIND, tenant_at

from portal.db.engine import fetch, tenant_transaction
from portal.testing import customer_id
from portal.web.sessions import digest, load_session, start_session

IDLE = timedelta(minutes=30)


async def _last_seen(platform, token: str) -> datetime:
    owner = await asyncpg.connect(platform.settings.database_url)
    try:
        return await owner.fetchval("SELECT last_seen_at FROM portal_session WHERE id = $1", digest(token))
    finally:
        await owner.close()


async def _set_last_seen(platform, token: str, at: datetime) -> None:
    owner = await asyncpg.connect(platform.settings.database_url)
    try:
        await owner.execute("UPDATE portal_session SET last_seen_at = $2 WHERE id = $1", digest(token), at)
    finally:
        await owner.close()


async def _greenfield_session(platform) -> tuple[object, str]:
    tenant = await tenant_at(platform, GREENFIELD)
    jane = await customer_id(tenant.merchant.slug, "jane@globalco.com")
    return tenant, await start_session(tenant, jane, timedelta(hours=8))


async def test_another_isos_scope_finds_no_session_even_with_the_token(platform) -> None:
    tenant, token = await _greenfield_session(platform)
    other = await tenant_at(platform, NORTHWIND)
    assert other.merchant.iso_id != tenant.merchant.iso_id
    now = datetime.now(UTC)
    args = (digest(token), tenant.merchant.id, now, now - IDLE, now - timedelta(minutes=1))
    found = await fetch("SELECT * FROM portal_session_lookup($1, $2, $3, $4, $5, $6)", tenant.merchant.iso_id, *args)
    assert [row["email"] for row in found] == ["jane@globalco.com"]
    across = await fetch("SELECT * FROM portal_session_lookup($1, $2, $3, $4, $5, $6)", other.merchant.iso_id, *args)
    assert across == []
    # Asked on another merchant's behalf (of the same ISO or not), the token opens nothing either.
    assert await load_session(other, token, IDLE) is None


async def test_the_lookup_gives_the_enclosing_transactions_scope_back(platform) -> None:
    tenant, token = await _greenfield_session(platform)
    other = await tenant_at(platform, NORTHWIND)
    async with tenant_transaction(other.merchant.iso_id):
        session = await load_session(tenant, token, IDLE)
        scope = await fetch("SELECT current_setting('portal.iso_id') AS iso")
    assert session is not None and session.customer.email == "jane@globalco.com"
    assert scope == [{"iso": other.merchant.iso_id}]
    # Outside a transaction, the lookup's scope ends with its statement.
    assert await load_session(tenant, token, IDLE) is not None
    assert await fetch("SELECT current_setting('portal.iso_id', true) AS iso") in ([{"iso": None}], [{"iso": ""}])


async def test_the_idle_timer_is_refreshed_at_most_once_a_minute(platform) -> None:
    tenant, token = await _greenfield_session(platform)
    recent = datetime.now(UTC) - timedelta(seconds=20)
    await _set_last_seen(platform, token, recent)
    assert await load_session(tenant, token, IDLE) is not None
    assert await _last_seen(platform, token) == recent
    older = datetime.now(UTC) - timedelta(minutes=5)
    await _set_last_seen(platform, token, older)
    before = datetime.now(UTC)
    assert await load_session(tenant, token, IDLE) is not None
    assert await _last_seen(platform, token) >= before - timedelta(seconds=1)
    await _set_last_seen(platform, token, datetime.now(UTC) - IDLE - timedelta(seconds=1))
    assert await load_session(tenant, token, IDLE) is None
