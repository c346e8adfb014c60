"""Other people's subscriptions, forged requests and merchants without the plugin.

Every route is tried with another customer's, another merchant's and another ISO's subscription
ids (404, nothing changed), every POST without its CSRF token (403, nothing changed), and every
route on a merchant where the plugin is off (404), where subscriptions still renew.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from plugins.subscriptions.conftest import FAR, MAIN, OFF, SIBLING, World
from plugins.subscriptions.helpers import text

from portal.access.links import issue_link
from portal.billing.advance import advance_clock
from portal.billing.clock import merchant_now
from portal.db.engine import fetch, tenant_transaction
from portal.testing import Foreign, ForeignIds, assert_no_cross_tenant_leak

UNKNOWN = "sub_01jzzzzzzzzzzzzzzzzzzzzzzz"
GET_ROUTES = [
    "/subscriptions/{id}",
    "/subscriptions/{id}/pause",
    "/subscriptions/{id}/pause/review",
    "/subscriptions/{id}/cancel",
    "/subscriptions/{id}/cancel/review",
    "/subscriptions/{id}/change",
    "/subscriptions/{id}/change/review",
]
POST_ROUTES = {
    "/subscriptions/{id}/pause": {"reason": "Other", "duration": "1"},
    "/subscriptions/{id}/resume": {},
    "/subscriptions/{id}/cancel": {"mode": "period_end", "reason": "other"},
    "/subscriptions/{id}/undo-cancel": {},
    "/subscriptions/{id}/change": {"quantity": "2", "quoted_at": "2026-01-01T00:00:00+00:00", "quoted_amount": "0"},
}


async def test_no_route_reaches_anyone_elses_subscription(world: World, shopper) -> None:
    email = "jane-everywhere@example.com"
    jane = await shopper(MAIN, email=email)
    mine = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    sam = await shopper(MAIN)
    janes_sibling = await shopper(SIBLING, email=email)
    janes_far = await shopper(FAR, email=email)
    foreign = {
        "other customer": await sam.subscribe(world.prices[MAIN]["Monthly Bread Box"], quantity=7),
        "other merchant": await janes_sibling.subscribe(world.prices[SIBLING]["Monthly Bread Box"], quantity=8),
        "other ISO": await janes_far.subscribe(world.prices[FAR]["Monthly Bread Box"], quantity=9),
    }
    ids = ForeignIds(
        other_customer=Foreign(foreign["other customer"].id, ("$273.00",)),
        other_merchant=Foreign(foreign["other merchant"].id, ("$312.00",)),
        other_iso=Foreign(foreign["other ISO"].id, ("$351.00",)),
        unknown=UNKNOWN,
    )
    owners = {"other customer": (MAIN, sam), "other merchant": (SIBLING, janes_sibling), "other ISO": (FAR, janes_far)}

    async def state() -> object:
        return [await world.rows(slug, foreign[label].id) for label, (slug, _) in owners.items()]

    for route in GET_ROUTES:
        await assert_no_cross_tenant_leak(jane.client, "GET", route, ids=ids)
    for route, data in POST_ROUTES.items():
        await assert_no_cross_tenant_leak(jane.client, "POST", route, ids=ids, data=data, state=state)
    assert (await jane.client.get(f"/subscriptions/{mine.id}")).status_code == 200  # her own is there


async def test_every_post_needs_its_csrf_token(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    before = await world.rows(MAIN, box.id)
    for route, data in POST_ROUTES.items():
        path = route.replace("{id}", box.id)
        missing = await jane.client.post(path, data=data)
        wrong = await jane.client.post(path, data={**data, "csrf_token": "not-the-token"})
        assert (missing.status_code, wrong.status_code) == (403, 403), path
    assert await world.rows(MAIN, box.id) == before


async def test_where_the_plugin_is_off_nothing_shows_and_subscriptions_still_renew(world: World, shopper) -> None:
    jane = await shopper(OFF)
    await jane.card()
    box = await jane.subscribe(world.prices[OFF]["Monthly Bread Box"])
    for route in ["/subscriptions", *GET_ROUTES]:
        assert (await jane.client.get(route.replace("{id}", box.id))).status_code == 404, route
    for route, data in POST_ROUTES.items():
        response = await jane.client.post(
            route.replace("{id}", box.id), data={**data, "csrf_token": await jane.csrf("/payment-methods")}
        )
        assert response.status_code == 404, route
    overview = (await jane.client.get("/")).text
    assert 'href="/subscriptions"' not in overview and "Subscriptions" not in text(overview)
    assert 'href="/payment-methods"' in overview  # the cards plugin is on: the page is a real Overview

    tenant = world.tenants[OFF]
    async with tenant_transaction(tenant.merchant.iso_id):
        now = await merchant_now(tenant.merchant.id)
    report = await advance_clock(world.platform, tenant, now + timedelta(days=32))
    assert box.id in report.renewed
    renewed = await jane.subscription(box.id)
    assert renewed.current_period_start == box.current_period_end and renewed.status == "active"
    async with tenant_transaction(tenant.merchant.iso_id):
        invoices = await fetch(
            "SELECT status FROM portal_billing_invoice WHERE subscription_id = $1 ORDER BY id", box.id
        )
    assert [row["status"] for row in invoices] == ["paid", "paid"]


@pytest.mark.parametrize("flow", ["subscription_cancel", "subscription_update", "subscription_pause"])
async def test_a_flow_where_the_plugin_is_off_lands_on_the_overview(world: World, shopper, flow: str) -> None:
    jane = await shopper(OFF)
    box = await jane.subscribe(world.prices[OFF]["Monthly Bread Box"])
    tenant = world.tenants[OFF]
    async with tenant_transaction(tenant.merchant.iso_id):
        link = await issue_link(world.platform.settings, tenant, jane.customer.id, flow=f"{flow}:{box.id}")
    landed = await jane.client.get(f"/access/{link.token}")
    assert landed.status_code == 303 and landed.headers["location"] == "/"
