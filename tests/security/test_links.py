"""Link lifecycle: single use, revocation, purposes, key rotation, sessions and their limits."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from security.conftest import GREENFIELD, issue, mint, tenant_at

from portal.access.keys import create_key, retire_key
from portal.access.links import fulfil_link, revoke_link
from portal.db.engine import fetch, tenant_transaction
from portal.plugins.manager import create_plugin_manager
from portal.plugins.registry import PluginRegistry
from portal.web.sessions import COOKIE_NAME
from support.browser import serving

_DECLARED = PluginRegistry(create_plugin_manager(load_plugins=None)).link_purposes
PURPOSES: tuple[str, ...] = tuple(sorted(_DECLARED))
"""Every purpose a link may carry: core's and the installed plugins'."""
SINGLE_USE = frozenset(name for name, purpose in _DECLARED.items() if purpose.single_use)


def _documented_once() -> frozenset[str]:
    """The purposes docs/access-links.md says work once (its purpose table's "uses" column)."""
    text = (Path(__file__).parents[2] / "docs" / "access-links.md").read_text(encoding="utf-8")
    text = text.split("Every link has a **purpose**", 1)[1].split("\n\n", 2)[1]  # the table after that sentence
    rows = re.findall(r"^\| `([a-z_]+)` \|[^|\n]*\|[^|\n]*\| ([^|\n]+?) \|", text, flags=re.MULTILINE)
    documented = {purpose: uses for purpose, uses in rows if purpose in PURPOSES}
    assert set(documented) == set(PURPOSES), f"the purpose table names {sorted(documented)}"
    return frozenset(purpose for purpose, uses in documented.items() if uses == "once")


ONCE = sorted(SINGLE_USE | _documented_once())
"""Single-use purposes: the code's set, and those documented as such (so dropping one from the code is seen)."""
REUSABLE = sorted(set(PURPOSES) - set(ONCE))
OPENS_ALONE = [name for name in ONCE if _DECLARED[name].on_landing is None]
"""Single-use purposes a token alone opens; one with an ``on_landing`` gate (the merchant switch's
``switch``, which needs the switch it recorded) is tested once-only by its plugin's tests."""


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
    assert out.status_code == 303 and out.headers["location"] == "/signed-out"
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


# --- uses per purpose -------------------------------------------------------------------------


def test_the_single_use_purposes_are_the_documented_ones() -> None:
    assert _documented_once() == SINGLE_USE
    assert REUSABLE, "no purpose may be reused: the reuse tests below would test nothing"


async def _land_and_read(land, host: str, token: str):
    _, response = await land(host, token)
    return response, COOKIE_NAME in response.headers.get("set-cookie", "")


@pytest.mark.parametrize("source", ["issued", "offline"])
@pytest.mark.parametrize("purpose", OPENS_ALONE)
async def test_a_single_use_link_works_once(platform, land, purpose: str, source: str) -> None:
    if source == "issued":  # recorded when issued, marked used on landing
        token = (await issue(platform, GREENFIELD, purpose=purpose)).token
    else:  # minted by the merchant's backend, recorded the first time it is used
        token = await mint(platform, GREENFIELD, purpose=purpose, exp=int(datetime.now(UTC).timestamp()) + 120)
    first, signed_in = await _land_and_read(land, GREENFIELD, token)
    assert first.status_code == 303 and signed_in
    for _ in range(2):
        again, signed_in = await _land_and_read(land, GREENFIELD, token)
        assert again.status_code == 410 and "This link was already used" in again.text
        assert not signed_in


@pytest.mark.parametrize("purpose", PURPOSES)
async def test_an_expired_link_answers_410_whatever_its_purpose(platform, land, purpose: str) -> None:
    now = int(datetime.now(UTC).timestamp())
    token = await mint(platform, GREENFIELD, purpose=purpose, exp=now - 5, iat=now - 65)
    response, signed_in = await _land_and_read(land, GREENFIELD, token)
    assert response.status_code == 410 and "This link has expired" in response.text
    assert not signed_in


@pytest.mark.parametrize("purpose", REUSABLE)
async def test_a_reusable_link_reopens_until_it_is_fulfilled(platform, land, purpose: str) -> None:
    link = await issue(platform, GREENFIELD, purpose=purpose)
    for _ in range(3):
        response, signed_in = await _land_and_read(land, GREENFIELD, link.token)
        assert response.status_code == 303 and signed_in
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        await fulfil_link(tenant, link.id)
    response, signed_in = await _land_and_read(land, GREENFIELD, link.token)
    assert response.status_code == 410 and "This link was already used" in response.text
    assert not signed_in


# --- one single-use link, many connections at once ---------------------------------------------

PARALLEL = 8


async def _open_connections(iso_id: str, count: int) -> None:
    """Have ``count`` database connections open at once, so none of the landings waits for one to be made."""
    barrier = asyncio.Barrier(count)

    async def hold() -> None:
        async with tenant_transaction(iso_id):
            await barrier.wait()

    await asyncio.gather(*(hold() for _ in range(count)))


async def _behind_the_held_row(platform, link_id: str, landings: list) -> list[httpx.Response]:
    """Run ``landings`` while another transaction holds the link's row, as a slow first landing would.

    The row is let go once every landing waits for a lock (so each has checked whatever it checks
    before writing), or once they have all finished (a redemption that never waits for the row).
    """
    loop = asyncio.get_running_loop()
    owner = await asyncpg.connect(platform.settings.database_url)
    tasks = []
    try:
        async with owner.transaction():
            await owner.execute("SELECT 1 FROM portal_link WHERE id = $1 FOR UPDATE", link_id)
            tasks = [asyncio.ensure_future(landing) for landing in landings]
            deadline = loop.time() + 30
            while not all(task.done() for task in tasks):
                waiting = await owner.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
                )
                if waiting == len(tasks):
                    break
                assert loop.time() < deadline, f"only {waiting} of {len(tasks)} landings reached the database"
    finally:
        await owner.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    answers = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        answers.append(result)
    return answers


@pytest.mark.parametrize("timing", ["as_they_come", "all_waiting"])
@pytest.mark.parametrize("purpose", OPENS_ALONE)
async def test_a_single_use_link_opened_from_many_connections_at_once_signs_in_once(
    platform, purpose: str, timing: str
) -> None:
    """Real parallel connections to a real server: exactly one landing wins.

    ``as_they_come`` sends them together and lets the server interleave them as it may;
    ``all_waiting`` holds the link's row until every landing is inside its redemption, the
    widest overlap two uses can have.
    """
    link = await issue(platform, GREENFIELD, purpose=purpose)
    tenant = await tenant_at(platform, GREENFIELD)
    await _open_connections(tenant.merchant.iso_id, PARALLEL)  # a warm pool, as a busy server has
    async with serving(platform) as live:
        clients = [live.client(GREENFIELD) for _ in range(PARALLEL)]
        try:
            # Each client opens its own connection first, so the landings go out together.
            assert all(r.status_code == 200 for r in await asyncio.gather(*(c.get("/-/health") for c in clients)))
            landings = [client.get(f"/access/{link.token}") for client in clients]
            if timing == "all_waiting":
                answers = await _behind_the_held_row(platform, link.id, landings)
            else:
                answers = await asyncio.gather(*landings)
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [303] + [410] * (PARALLEL - 1), statuses
    for answer in answers:
        has_session = COOKIE_NAME in answer.headers.get("set-cookie", "")
        assert has_session == (answer.status_code == 303)
        if answer.status_code == 410:
            assert "This link was already used" in answer.text
    async with tenant_transaction(tenant.merchant.iso_id):
        sessions = await fetch(
            "SELECT count(*) AS n FROM portal_session WHERE merchant_id = $1 AND link_id = $2",
            tenant.merchant.id,
            link.id,
        )
        uses = await fetch("SELECT use_count FROM portal_link WHERE id = $1", link.id)
    assert sessions[0]["n"] == 1
    assert uses[0]["use_count"] == 1  # a refused landing's transaction records nothing
