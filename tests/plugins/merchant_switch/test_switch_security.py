"""A switch link opens one session, once, on its target's host only; forged targets are 404; RLS holds.

Refused: the link on another merchant's host, twice, after expiry, with one byte changed, for a
target that was suspended or turned switching off since, for a source that stopped being a
sibling, and a ``switch`` link no switch minted. Every POST without CSRF is 403.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from plugins.merchant_switch.conftest import (
    APEX,
    DOOMED,
    FAR,
    GREENFIELD,
    OFF,
    PINNACLE,
    TOGGLED,
    World,
    host,
)

from portal.access.links import issue_link
from portal.db.engine import fetch, tenant_transaction
from portal_merchant_switch import records
from portal_merchant_switch.siblings import accounts

SESSION = "__Host-portal_session"


def token_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return urlsplit(response.headers["location"]).path.removeprefix("/access/")


async def open_link(world: World, slug: str, token: str) -> httpx.Response:
    assert world.client_for is not None
    return await world.client_for(host(slug)).get(f"/access/{token}")


def refused(response: httpx.Response, status: int) -> bool:
    return response.status_code == status and SESSION not in response.headers.get("set-cookie", "")


async def test_a_switch_link_works_once_and_only_on_its_targets_host(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE, APEX)
    token = token_of(await jane[GREENFIELD].switch(world.tenants[PINNACLE]))
    for elsewhere in (GREENFIELD, APEX, FAR):
        answer = await open_link(world, elsewhere, token)
        assert refused(answer, 400), elsewhere
        assert "This link is not valid" in answer.text
    assert (await open_link(world, PINNACLE, token)).status_code == 303
    again = await open_link(world, PINNACLE, token)
    assert refused(again, 410) and "already used" in again.text


async def test_a_switch_link_opened_many_times_at_once_signs_in_once(world: World) -> None:
    jane = await world.person(GREENFIELD, APEX)
    token = token_of(await jane[GREENFIELD].switch(world.tenants[APEX]))
    answers = await asyncio.gather(*(open_link(world, APEX, token) for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [303, 410, 410, 410, 410, 410]
    assert sum(SESSION in a.headers.get("set-cookie", "") for a in answers) == 1


async def test_a_changed_byte_or_an_expired_link_opens_nothing(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE)
    token = token_of(await jane[GREENFIELD].switch(world.tenants[PINNACLE]))
    for position in (len("pt1.") + 3, len(token) // 2, len(token) - 2):
        flipped = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
        assert refused(await open_link(world, PINNACLE, flipped), 400), position
    target = world.tenants[PINNACLE]
    async with tenant_transaction(target.merchant.iso_id):
        link = await issue_link(
            world.platform.settings,
            target,
            jane[PINNACLE].customer_id,
            purpose="switch",
            expires_in=timedelta(seconds=1),
        )
        await records.record(
            target.merchant.iso_id, from_merchant=world.tenants[GREENFIELD].merchant.id,
            from_customer=jane[GREENFIELD].customer_id, to_merchant=target.merchant.id,
            to_customer=jane[PINNACLE].customer_id, link_id=link.id,
        )  # fmt: skip
    await asyncio.sleep(2.1)
    expired = await open_link(world, PINNACLE, link.token)
    assert refused(expired, 410) and "expired" in expired.text


async def test_a_switch_link_no_switch_minted_is_refused(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE)
    target = world.tenants[PINNACLE]
    async with tenant_transaction(target.merchant.iso_id):
        link = await issue_link(world.platform.settings, target, jane[PINNACLE].customer_id, purpose="switch")
    assert refused(await open_link(world, PINNACLE, link.token), 400)


async def test_a_target_suspended_or_with_switching_off_since_opens_nothing(world: World) -> None:
    jane = await world.person(GREENFIELD, DOOMED, TOGGLED)
    to_doomed = token_of(await jane[GREENFIELD].switch(world.tenants[DOOMED]))
    to_toggled = token_of(await jane[GREENFIELD].switch(world.tenants[TOGGLED]))
    iso_id = world.tenants[GREENFIELD].merchant.iso_id
    async with tenant_transaction(iso_id):
        await fetch("UPDATE portal_merchant SET status = 'suspended' WHERE id = $1", world.tenants[DOOMED].merchant.id)
        await fetch(
            "UPDATE portal_plugin_activation SET enabled = false "
            "WHERE merchant_id = $1 AND plugin_key = 'merchant_switch'",
            world.tenants[TOGGLED].merchant.id,
        )
    world.platform.tenants.invalidate()
    assert (await open_link(world, DOOMED, to_doomed)).status_code == 404
    assert refused(await open_link(world, TOGGLED, to_toggled), 400)
    page = await jane[GREENFIELD].client.get("/switch")
    assert "Doomed Deli" not in page.text and "Toggled Tools" not in page.text


async def test_a_source_that_stopped_being_a_sibling_opens_nothing(world: World) -> None:
    jane = await world.person(GREENFIELD, APEX)
    token = token_of(await jane[GREENFIELD].switch(world.tenants[APEX]))
    async with tenant_transaction(world.tenants[GREENFIELD].merchant.iso_id):
        await fetch(
            "UPDATE portal_customer SET email = 'moved@example.com', email_normalized = 'moved@example.com' "
            "WHERE id = $1",
            jane[GREENFIELD].customer_id,
        )
    assert refused(await open_link(world, APEX, token), 400)


async def test_forged_targets_are_404_and_a_post_without_csrf_is_403(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE, OFF, FAR)
    client = jane[GREENFIELD].client
    csrf = await jane[GREENFIELD].csrf()
    pinnacle = world.tenants[PINNACLE].merchant.id
    forged = [
        world.tenants[FAR].merchant.id,  # another ISO, same email
        world.tenants[OFF].merchant.id,  # same ISO, switching off there
        world.tenants[GREENFIELD].merchant.id,  # here
        world.tenants[APEX].merchant.id,  # same ISO, no record of hers
        "mer_01jzzzzzzzzzzzzzzzzzzzzzzz",
        "x" * 300,
        "%00",
    ]
    for merchant_id in forged:
        answer = await client.post(f"/switch/{merchant_id}", data={"csrf_token": csrf})
        assert answer.status_code in (404, 400), merchant_id
        assert "location" not in answer.headers
    no_csrf = await client.post(f"/switch/{pinnacle}", data={})
    assert no_csrf.status_code == 403
    async with tenant_transaction(world.tenants[GREENFIELD].merchant.iso_id):
        minted = await fetch("SELECT count(*) AS n FROM merchant_switch_record WHERE from_customer_id = $1",
                             jane[GREENFIELD].customer_id)  # fmt: skip
    assert minted == [{"n": 0}]


async def test_a_session_of_one_merchants_host_is_refused_on_another(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE)
    cookie = jane[GREENFIELD].client.cookies.get(SESSION)
    assert cookie
    assert world.client_for is not None
    stranger = world.client_for(host(PINNACLE))
    stranger.cookies.set(SESSION, cookie, domain=host(PINNACLE), path="/")
    assert (await stranger.get("/switch")).status_code == 401
    overview = await stranger.get("/")
    assert "Signed in as" not in overview.text


async def test_the_sibling_query_as_the_app_role_never_reaches_another_iso(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE, FAR)
    harbor, summit = world.tenants[GREENFIELD].merchant.iso_id, world.tenants[FAR].merchant.iso_id
    async with tenant_transaction(harbor):
        role = await fetch("SELECT current_user AS name, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert role == [{"name": "portal_app", "rolbypassrls": False}]
        mine = await accounts(harbor, await _email(jane[GREENFIELD].customer_id))
        asked_for_summit = await accounts(summit, await _email(jane[GREENFIELD].customer_id))
        by_id = await fetch("SELECT id FROM portal_customer WHERE id = $1", jane[FAR].customer_id)
        far_merchant = await fetch("SELECT id FROM portal_merchant WHERE id = $1", world.tenants[FAR].merchant.id)
    assert {a.customer_id for a in mine} == {jane[GREENFIELD].customer_id, jane[PINNACLE].customer_id}
    assert asked_for_summit == [] and by_id == [] and far_merchant == []
    async with tenant_transaction(summit):  # and the other way round
        assert {a.customer_id for a in await accounts(summit, await _email(jane[FAR].customer_id))} == {
            jane[FAR].customer_id
        }
        assert await accounts(harbor, await _email(jane[FAR].customer_id)) == []


async def _email(customer_id: str) -> str:
    rows = await fetch("SELECT email_normalized FROM portal_customer WHERE id = $1", customer_id)
    return str(rows[0]["email_normalized"])
