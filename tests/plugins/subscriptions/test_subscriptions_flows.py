"""Deep links into one subscription: the API's portal sessions and ``portal links create``.

A link with a flow lands on that subscription's page (cancel, change, pause); after the action
the portal offers the link's return URL.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from plugins.subscriptions.conftest import MAIN, OFF, World, host
from plugins.subscriptions.helpers import hidden_fields, item, text

from portal.api.keys import create_api_key
from portal.db.engine import tenant_transaction
from support.cli import cli_environment, portal

PATHS = {"subscription_cancel": "cancel", "subscription_update": "change", "subscription_pause": "pause"}


async def _api_key(world: World, slug: str) -> str:
    tenant = world.tenants[slug]
    async with tenant_transaction(tenant.merchant.iso_id):
        _, secret = await create_api_key(
            tenant.merchant.iso_id, tenant.merchant.id, scopes=["portal_sessions:write"],
            known=world.platform.registry.api_scopes,
        )  # fmt: skip
    return secret


@pytest.mark.parametrize("flow", list(PATHS))
async def test_a_portal_session_flow_lands_on_the_subscription(world: World, shopper, flow: str) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    key = await _api_key(world, MAIN)
    created = await jane.client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane.customer.id, "flow": {"type": flow, "id": box.id}, "return_url": "https://shop.test/a"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["flow"] == f"{flow}:{box.id}"
    token = created.json()["url"].rsplit("/access/", 1)[1]
    jane.client.cookies.clear()
    landed = await jane.client.get(f"/access/{token}")
    assert landed.status_code == 303
    assert landed.headers["location"] == f"/subscriptions/{box.id}/{PATHS[flow]}"
    page = await jane.client.get(landed.headers["location"])
    assert page.status_code == 200 and "Monthly Bread Box" in page.text


async def test_after_the_action_the_return_url_is_offered(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    key = await _api_key(world, MAIN)
    created = await jane.client.post(
        "/api/v1/portal-sessions",
        json={
            "customer": jane.customer.id,
            "flow": {"type": "subscription_cancel", "id": box.id},
            "return_url": "https://shop.test/account",
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    jane.client.cookies.clear()
    landed = await jane.client.get(f"/access/{created.json()['url'].rsplit('/access/', 1)[1]}")
    review = await jane.client.get(f"{landed.headers['location']}/review", params={"mode": "period_end"})
    done = await jane.client.post(f"/subscriptions/{box.id}/cancel", data=hidden_fields(review.text))
    page = await jane.client.get(done.headers["location"])
    assert "Return to Greenfield Test" in text(page.text)
    assert '<a class="button button--primary" href="https://shop.test/account">' in page.text


async def test_the_api_refuses_a_flow_without_an_id_or_where_the_plugin_is_off(world: World, shopper) -> None:
    jane = await shopper()
    key = await _api_key(world, MAIN)
    no_id = await jane.client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane.customer.id, "flow": {"type": "subscription_pause"}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert no_id.status_code == 422
    sam = await shopper(OFF)
    off_key = await _api_key(world, OFF)
    off = await sam.client.post(
        "/api/v1/portal-sessions",
        json={"customer": sam.customer.id, "flow": {"type": "subscription_pause", "id": "sub_" + "0" * 26}},
        headers={"Authorization": f"Bearer {off_key}"},
    )
    assert off.status_code == 422 and "not available" in off.text


async def test_portal_links_create_takes_a_flow_and_a_return_url(world: World, shopper, tmp_path: Path) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    env = cli_environment(str(world.platform.settings.database_url), tmp_path / "site")
    base = ("links", "create", "--merchant", MAIN, "--email", jane.customer.email)
    result = portal(env, *base, "--flow", f"subscription_pause:{box.id}", "--return-url", "https://shop.test/r")
    assert result.returncode == 0, result.stderr
    token = result.stdout.split("/access/", 1)[1].split()[0]
    assert result.stdout.startswith(f"https://{host(MAIN)}/access/")
    jane.client.cookies.clear()
    landed = await jane.client.get(f"/access/{token}")
    assert landed.headers["location"] == f"/subscriptions/{box.id}/pause"
    page = await jane.client.get(landed.headers["location"])
    assert 'href="https://shop.test/r"' in page.text  # the layout's way back to the merchant

    for flow, message in (
        ("subscription_pause", "needs a subscription id"),
        ("subscription_pause:pm_01jzzzzzzzzzzzzzzzzzzzzzzz", "needs a subscription id"),
        ("no_such_flow", "not available"),
    ):
        refused = portal(env, *base, "--flow", flow)
        assert refused.returncode != 0 and message in refused.stderr, (flow, refused.stderr)
    bad_url = portal(env, *base, "--return-url", "javascript:alert(1)")
    assert bad_url.returncode != 0 and "--return-url" in bad_url.stderr


@pytest.mark.parametrize(
    ("locale", "amount", "on", "date_pattern"),
    [
        ("de-DE", "39,00\u00a0$", "am", r"\d{2}\.\d{2}\.\d{4}"),  # the customer's locale, in German
        ("zz-ZZ", "$39.00", "on", r"[A-Z][a-z]{2} \d{1,2}, \d{4}"),  # one Babel does not know: the merchant's
    ],
)
async def test_dates_and_amounts_follow_the_customers_locale(
    world: World, shopper, locale: str, amount: str, on: str, date_pattern: str
) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    key = await _api_key(world, MAIN)
    created = await jane.client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane.customer.id, "locale": locale},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert created.status_code == 201, created.text
    jane.client.cookies.clear()
    await jane.client.get(f"/access/{created.json()['url'].rsplit('/access/', 1)[1]}")
    for path in ("/subscriptions", f"/subscriptions/{box.id}", "/"):
        page = await jane.client.get(path)
        assert page.status_code == 200, path
        assert re.search(re.escape(amount) + f"( /| {on} )", page.text), path
    listed = item((await jane.client.get("/subscriptions")).text, box.id)
    assert re.search(f"{re.escape(amount)} {on} {date_pattern}", listed), listed
