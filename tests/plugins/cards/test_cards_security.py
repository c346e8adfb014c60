"""Every cards route with other customers', merchants' and ISOs' ids, without CSRF, signed out, off."""

from __future__ import annotations

import re

import pytest
from plugins.cards.conftest import APEX, GREENFIELD, MASTERCARD, NORTHWIND, PINNACLE, VISA, cards_of

from portal.db.engine import fetch, tenant_transaction

ROUTES = [
    ("GET", "/payment-methods/{id}/remove"),
    ("POST", "/payment-methods/{id}/remove"),
    ("POST", "/payment-methods/{id}/default"),
]


def _card(response) -> str:
    assert response.status_code == 303, response.text
    return re.search(r"card=(pm_[0-9a-z]+)", response.headers["location"]).group(1)  # type: ignore[union-attr]


@pytest.fixture
async def foreign_cards(platform, shopper) -> dict[str, str]:
    """Cards that are not the signed-in customer's: same merchant, sibling merchant, other ISO, removed."""
    sam = await shopper(GREENFIELD, "Sam")
    pinnacle = await shopper(PINNACLE, "Pia")
    northwind = await shopper(NORTHWIND, "Nora")
    mine = await shopper(GREENFIELD, "Jane")
    removed = _card(await mine.add(MASTERCARD))
    _card(await mine.add(VISA))
    assert (await mine.post(f"/payment-methods/{removed}/remove")).status_code == 303
    return {
        "other customer": _card(await sam.add(VISA)),
        "other merchant": _card(await pinnacle.add(VISA)),
        "other ISO": _card(await northwind.add(VISA)),
        "removed": removed,
        "malformed": "pm_not-an-id",
        "unknown": "pm_01jzzzzzzzzzzzzzzzzzzzzzzz",
        "_client": mine,  # type: ignore[dict-item]
    }


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("whose", ["other customer", "other merchant", "other ISO", "removed", "malformed", "unknown"])
async def test_foreign_card_ids_answer_404(platform, foreign_cards, method, path, whose) -> None:
    mine = foreign_cards["_client"]
    target = foreign_cards[whose]
    before = {host: await _snapshot(platform, host) for host in (GREENFIELD, PINNACLE, NORTHWIND)}
    url = path.format(id=target)
    if method == "GET":
        response = await mine.client.get(url)
    else:
        response = await mine.post(url)
    assert response.status_code == 404
    assert "Page not found" in response.text
    after = {host: await _snapshot(platform, host) for host in (GREENFIELD, PINNACLE, NORTHWIND)}
    assert after == before


async def _snapshot(platform, host):
    tenant = await platform.tenants.resolve(host)
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT id, is_default, removed_at FROM cards_payment_method WHERE merchant_id = $1 ORDER BY id",
            tenant.merchant.id,
        )
    return [tuple(row.values()) for row in rows]


@pytest.mark.parametrize("token", [None, "forged"])
@pytest.mark.parametrize(
    "path",
    ["/payment-methods", "/payment-methods/update", "/payment-methods/{id}/default", "/payment-methods/{id}/remove"],
)
async def test_posts_without_the_right_csrf_token_are_403(platform, shopper, token, path) -> None:
    jane = await shopper()
    first = _card(await jane.add(VISA))
    second = _card(await jane.add(MASTERCARD))
    data = {"payment_token": await jane.tokenize(VISA)}
    if token:
        data["csrf_token"] = token
    response = await jane.client.post(path.format(id=second), data=data)
    assert response.status_code == 403
    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert set(rows) == {first, second}
    assert rows[first]["is_default"] and rows[second]["removed_at"] is None


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/payment-methods", 303),
        ("GET", "/payment-methods/new", 303),
        ("GET", "/payment-methods/update", 303),
        ("GET", "/payment-methods/pm_01jzzzzzzzzzzzzzzzzzzzzzzz/remove", 303),
        ("POST", "/payment-methods", 401),
        ("POST", "/payment-methods/pm_01jzzzzzzzzzzzzzzzzzzzzzzz/default", 401),
        ("POST", "/payment-methods/pm_01jzzzzzzzzzzzzzzzzzzzzzzz/remove", 401),
    ],
)
async def test_signed_out_visitors_are_sent_to_sign_in(platform, portal_client, method, path, status) -> None:
    client = portal_client(GREENFIELD)
    page = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    if method == "GET":
        response = await client.get(path)
        assert response.status_code == status and response.headers["location"] == "/login"
    else:
        response = await client.post(path, data={"csrf_token": csrf, "payment_token": "x"})
        assert response.status_code == status


@pytest.mark.parametrize("path", ["/payment-methods", "/payment-methods/new", "/payment-methods/update"])
async def test_where_the_plugin_is_off_its_pages_do_not_exist(platform, shopper, path) -> None:
    apex = await shopper(APEX)
    response = await apex.client.get(path)
    assert response.status_code == 404
    overview = await apex.client.get("/")
    assert 'href="/payment-methods"' not in overview.text


async def test_another_isos_host_never_shows_this_customers_cards(platform, shopper, portal_client) -> None:
    jane = await shopper(GREENFIELD)
    _card(await jane.add(VISA))
    stranger = portal_client(NORTHWIND)
    stranger.cookies = jane.client.cookies  # the Greenfield session cookie means nothing at Northwind
    response = await stranger.get("/payment-methods")
    assert response.status_code == 303 and response.headers["location"] == "/login"
