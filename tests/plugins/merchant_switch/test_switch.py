"""The header line, the switch page and the switch: siblings only within the ISO, both sides allowing it."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from plugins.merchant_switch.conftest import (
    APEX,
    FAR,
    GREENFIELD,
    LEAVING,
    NAMES,
    OFF,
    PINNACLE,
    World,
    host,
)

from portal.db.engine import fetch, tenant_transaction
from portal.events.verify import verify_chain


async def test_the_header_line_counts_siblings_on_every_page(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE, APEX, OFF, FAR)
    for path in ("/", "/invoices", "/subscriptions", "/switch"):
        page = await jane[GREENFIELD].client.get(path)
        assert page.status_code == 200, path
        assert "You have accounts at 2 other merchants" in page.text, path
        assert 'href="/switch"' in page.text
    loner = await world.person(GREENFIELD, OFF, FAR)  # records where switching is off or in another ISO
    assert "You have accounts at" not in (await loner[GREENFIELD].client.get("/")).text
    pair = await world.person(GREENFIELD, APEX)
    assert "You have accounts at 1 other merchant<" in (await pair[APEX].client.get("/")).text


async def test_no_header_line_where_switching_is_off(world: World) -> None:
    jane = await world.person(OFF, GREENFIELD, PINNACLE)
    page = await jane[OFF].client.get("/")
    assert page.status_code == 200 and "You have accounts at" not in page.text
    assert (await jane[OFF].client.get("/switch")).status_code == 404


async def test_the_switch_page_lists_the_siblings_with_a_summary(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE, APEX, OFF, FAR)
    page = await jane[GREENFIELD].client.get("/switch")
    assert page.status_code == 200
    text = page.text
    assert "Switch merchant" in text and "Current</strong> · You are here" in text
    assert NAMES[PINNACLE] in text and NAMES[APEX] in text
    assert NAMES[FAR] not in text and NAMES[OFF] not in text
    assert text.count(">Switch</button>") == 2
    assert "Every switch mints a new token — no session leaks between merchants." in text
    pinnacle = world.tenants[PINNACLE].merchant
    assert f'action="/switch/{pinnacle.id}"' in text
    # Nothing open at either sibling: the plugins add no words ("0 subs" is never said).
    assert text.count('<p class="switch__summary">Active</p>') == 2, text


async def test_a_switch_opens_a_new_session_at_the_target_and_records_both_sides(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE)
    source, target = world.tenants[GREENFIELD], world.tenants[PINNACLE]
    answer = await jane[GREENFIELD].switch(target)
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    assert location.hostname == host(PINNACLE) and location.path.startswith("/access/pt1.")
    landed = await world.land(PINNACLE, answer)
    assert landed.status_code == 303 and landed.headers["location"] == "/"
    assert "__Host-portal_session" in landed.headers["set-cookie"]
    visitor = world.client_for(host(PINNACLE))  # type: ignore[misc]
    visitor.cookies.update(landed.cookies)
    arrived = await visitor.get("/")
    assert arrived.status_code == 200 and NAMES[PINNACLE] in arrived.text
    # the source session goes on (the merchant's default)
    assert "Signed in as" in (await jane[GREENFIELD].client.get("/")).text
    ids = {jane[GREENFIELD].customer_id, jane[PINNACLE].customer_id}
    for tenant, event_type, own, other in (
        (source, "customer.switched_out", jane[GREENFIELD].customer_id, ("to_merchant_name", NAMES[PINNACLE])),
        (target, "customer.switched_in", jane[PINNACLE].customer_id, ("from_merchant_name", NAMES[GREENFIELD])),
    ):
        async with tenant_transaction(tenant.merchant.iso_id):
            rows = await fetch(
                "SELECT merchant_id, data FROM portal_audit_event WHERE type = $1 AND customer_id = $2",
                event_type,
                own,
            )
            assert (await verify_chain(tenant.merchant.id)).ok
        assert len(rows) == 1 and rows[0]["merchant_id"] == tenant.merchant.id
        data = rows[0]["data"] if isinstance(rows[0]["data"], dict) else json.loads(rows[0]["data"])
        assert set(data) == {"id", "customer", other[0]} and data["customer"] == own and data[other[0]] == other[1]
        assert not (ids - {own}) & set(json.dumps(data).split('"')), "the other merchant's customer leaked"


async def test_a_merchant_may_end_the_session_on_switch(world: World) -> None:
    jane = await world.person(LEAVING, GREENFIELD)
    answer = await jane[LEAVING].switch(world.tenants[GREENFIELD])
    assert answer.status_code == 303
    assert "Max-Age=0" in answer.headers["set-cookie"] or "expires=" in answer.headers["set-cookie"].lower()
    after = await jane[LEAVING].client.get("/switch")
    assert after.status_code in (401, 303, 302) and "Signed in as" not in after.text
    assert (await world.land(GREENFIELD, answer)).status_code == 303
