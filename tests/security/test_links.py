"""Link lifecycle: single use, revocation, purposes, key rotation, sessions and their limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from security.conftest import GREENFIELD, issue, mint, tenant_at

from portal.access.keys import create_key, retire_key
from portal.access.links import fulfil_link, revoke_link
from portal.db.engine import tenant_transaction


async def test_landing_sets_a_strict_cookie_and_drops_the_token(platform, land) -> None:
    link = await issue(platform, GREENFIELD)
    client, response = await land(GREENFIELD, link.token)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    for attribute in ("__Host-portal_session=", "Secure", "HttpOnly", "SameSite=lax", "Path=/"):
        assert attribute in cookie
    assert "Domain" not in cookie
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    # Neither the redirect nor the pages after it carry the token anywhere.
    page = await client.get("/")
    assert page.status_code == 200 and "jane@globalco.com" in page.text
    assert "pt1." not in str(page.url)
    for seen in (response, page):
        assert "pt1." not in seen.headers.get("location", "")
        assert link.token not in seen.text


async def test_a_general_link_works_once(platform, land) -> None:
    link = await issue(platform, GREENFIELD)
    _, first = await land(GREENFIELD, link.token)
    _, second = await land(GREENFIELD, link.token)
    assert first.status_code == 303
    assert second.status_code == 410 and "already used" in second.text
    assert "Email me a new link" in second.text  # genuine link: one click asks for a fresh one


async def test_a_revoked_link_is_refused_and_its_sessions_end(platform, land) -> None:
    link = await issue(platform, GREENFIELD, purpose="update_payment")
    client, first = await land(GREENFIELD, link.token)
    assert first.status_code == 303 and (await client.get("/")).status_code == 200
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        await revoke_link(tenant, link.id)
    _, again = await land(GREENFIELD, link.token)
    assert again.status_code == 410 and "cancelled" in again.text
    assert (await client.get("/")).status_code == 303  # the session it opened is over


async def test_an_offline_link_can_be_revoked_before_first_use(platform, land) -> None:
    token = await mint(platform, GREENFIELD, jti="offline_revoked_before_use")
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        await revoke_link(tenant, "offline_revoked_before_use")
    _, response = await land(GREENFIELD, token)
    assert response.status_code == 410


async def test_update_payment_links_reopen_until_fulfilled(platform, land) -> None:
    link = await issue(platform, GREENFIELD, purpose="update_payment")
    assert link.expires_at - datetime.now(UTC) > timedelta(days=6, hours=23)
    for _ in range(3):
        _, response = await land(GREENFIELD, link.token)
        assert response.status_code == 303
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        await fulfil_link(tenant, link.id)
    _, response = await land(GREENFIELD, link.token)
    assert response.status_code == 410


async def test_a_retired_key_fails_while_a_rotated_out_key_still_verifies(platform, land) -> None:
    tenant = await tenant_at(platform, "t-apex.portal.localhost")
    iso, merchant = tenant.merchant.iso_id, tenant.merchant.id
    async with tenant_transaction(iso):
        old_kid, old_secret = await create_key(iso, merchant)
        new_kid, _ = await create_key(iso, merchant, retire_others_after=timedelta(days=1))
    host = "t-apex.portal.localhost"
    rotated_out = await mint(platform, host, kid=old_kid, secret=old_secret, jti="signed_with_rotated_key")
    _, response = await land(host, rotated_out)
    assert response.status_code == 303  # rotated out, not yet retired: still verifies
    async with tenant_transaction(iso):
        assert await retire_key(merchant, old_kid)
    retired = await mint(platform, host, kid=old_kid, secret=old_secret, jti="signed_with_retired_key")
    _, response = await land(host, retired)
    assert response.status_code == 400
    fresh = await issue(platform, host)
    assert f"pt1.{new_kid}." in fresh.token  # the new primary signs


async def _age_session(platform, column: str, delta: timedelta) -> None:
    owner = await asyncpg.connect(platform.settings.database_url)
    try:
        await owner.execute(
            f"UPDATE portal_session SET {column} = {column} - $1::interval WHERE ended_at IS NULL AND customer_id IN "
            "(SELECT id FROM portal_customer WHERE email_normalized = 'jane@globalco.com')",
            delta,
        )
    finally:
        await owner.close()


@pytest.mark.parametrize(
    ("column", "delta"),
    [("last_seen_at", timedelta(minutes=31)), ("expires_at", timedelta(hours=9))],
    ids=["idle", "absolute"],
)
async def test_sessions_end_at_their_limits(platform, land, column: str, delta: timedelta) -> None:
    link = await issue(platform, "t-pinnacle.portal.localhost")
    client, _ = await land("t-pinnacle.portal.localhost", link.token)
    assert (await client.get("/")).status_code == 200
    await _age_session(platform, column, delta)
    response = await client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/login"


async def test_logout_ends_the_session_on_the_server(platform, land, portal_client) -> None:
    import re

    link = await issue(platform, GREENFIELD)
    client, response = await land(GREENFIELD, link.token)
    stolen = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    page = await client.get("/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    out = await client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    replay = portal_client(GREENFIELD)
    replay.cookies.set("__Host-portal_session", stolen, domain=GREENFIELD, path="/")
    assert (await replay.get("/")).status_code == 303  # the old cookie no longer signs anyone in


async def test_signing_in_and_out_is_audited(platform, portal_client) -> None:
    import re

    link = await issue(platform, "t-northwind.portal.localhost")
    client = portal_client("t-northwind.portal.localhost")
    landed = await client.get(
        f"/access/{link.token}", headers={"x-request-id": "req-from-merchant-42", "user-agent": "Agent/1"}
    )
    assert landed.status_code == 303 and landed.headers["x-request-id"] == "req-from-merchant-42"
    page = await client.get("/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    await client.post("/logout", data={"csrf_token": csrf})
    owner = await asyncpg.connect(platform.settings.database_url)
    try:
        rows = await owner.fetch(
            "SELECT type, actor_type, actor_id, request_id, user_agent, data FROM portal_audit_event "
            "WHERE customer_id = (SELECT customer_id FROM portal_link WHERE id = $1) ORDER BY seq DESC LIMIT 2",
            link.id,
        )
    finally:
        await owner.close()
    ended, started = rows
    assert started["type"] == "portal_session.started" and ended["type"] == "portal_session.ended"
    assert started["actor_type"] == "customer" and started["request_id"] == "req-from-merchant-42"
    assert started["user_agent"] == "Agent/1" and link.id in started["data"]
