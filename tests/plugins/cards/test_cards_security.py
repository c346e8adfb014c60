"""Every cards route with other customers', merchants' and ISOs' ids, without CSRF, signed out, off."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, replace

import pytest
from plugins.cards.conftest import (
    APEX,
    GREENFIELD,
    MASTERCARD,
    NORTHWIND,
    PINNACLE,
    VISA,
    Shopper,
    cards_of,
    fresh_address,
)

from portal.db.engine import fetch, tenant_transaction
from portal.testing import Foreign, ForeignIds, assert_no_cross_tenant_leak
from portal_cards.routes import CARD_ROUTES, NOTICES

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
            "SELECT id, is_default, removed_at FROM portal_payment_method WHERE merchant_id = $1 ORDER BY id",
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


# --- the cross-tenant matrix: every route that takes a card id, in its path or its query ------

UNKNOWN = "pm_01jzzzzzzzzzzzzzzzzzzzzzzz"


@dataclass(frozen=True)
class Matrix:
    """Customer A at Greenfield, A's own cards, and the cards A must never reach."""

    me: Shopper
    live: Foreign  # A's default card
    expired: Foreign  # A's card whose expiry has passed
    removed: Foreign  # A's card taken off file
    ids: ForeignIds


async def _live_and_removed(shopper: Shopper, live: str, removed: str) -> tuple[Foreign, Foreign]:
    """Add two cards, take the second off file; each with its last four digits as the text giving it away."""
    kept = _card(await shopper.add(live))
    gone = _card(await shopper.add(removed))
    assert (await shopper.post(f"/payment-methods/{gone}/remove")).status_code == 303
    return Foreign(kept, (live[-4:],)), Foreign(gone, (removed[-4:],))


@pytest.fixture
async def matrix(platform, shopper) -> Matrix:
    """A (a fresh customer at Greenfield) and cards of: another customer at Greenfield; A's own
    email at Pinnacle (same ISO); A's own email at Northwind (another ISO); a live and a removed
    card each, with last four digits that appear nowhere on A's pages."""
    email = fresh_address("matrix", "globalco.com")
    me = await shopper(GREENFIELD, "Ada Matrix", email)
    live = Foreign(_card(await me.add("4242424242424242")), ("4242",))
    expired = Foreign(_card(await me.add("4012888888881881")), ("1881",))
    removed = Foreign(_card(await me.add("5105105105105100")), ("5100",))
    assert (await me.post(f"/payment-methods/{removed.id}/remove")).status_code == 303
    tenant = await platform.tenants.resolve(GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch("UPDATE portal_payment_method SET exp_month = 1, exp_year = 2020 WHERE id = $1", expired.id)
    sam = await shopper(GREENFIELD, "Sam", fresh_address("sam", "globalco.com"))
    at_pinnacle = await shopper(PINNACLE, "Ada Matrix", email)
    at_northwind = await shopper(NORTHWIND, "Ada Matrix", email)
    ids = ForeignIds(
        other_customer=await _live_and_removed(sam, "4111111111111111", "5555555555554444"),
        other_merchant=await _live_and_removed(at_pinnacle, "2223003122003222", "6011111111111117"),
        other_iso=await _live_and_removed(at_northwind, "6011000990139424", "3566002020360505"),
        unknown=UNKNOWN,
        removed=removed,
    )
    page = await me.client.get("/payment-methods")
    for _, card in ids.cases():
        for text in card.text:
            assert text not in page.text, f"{text} is on A's list already; the matrix could not see it leak"
    return Matrix(me, live, expired, removed, ids)


PATH_ROUTES = [
    ("GET", "/payment-methods/{id}/remove", ""),
    ("GET", "/payment-methods/{id}/remove", "error=remove_refused"),
    ("GET", "/payment-methods/{id}/remove", "error=card_required"),
    ("POST", "/payment-methods/{id}/remove", ""),
    ("POST", "/payment-methods/{id}/default", ""),
]
QUERY_ROUTES = [("GET", "/payment-methods", f"done={done}&card={{id}}") for done in NOTICES] + [
    ("GET", "/payment-methods", "error=duplicate&card={id}"),
    ("GET", "/payment-methods", "error=expired_default&card={id}"),
]


def _route_id(route: tuple[str, str, str]) -> str:
    """``GET-payment-methods-ID-remove``, ``GET-payment-methods-done=removed``: ids without braces."""
    method, path, query = route
    parts = [method, path.strip("/").replace("/", "-").replace("{id}", "ID")]
    return "-".join(parts + query.split("&")[:1] if query else parts)


@pytest.mark.parametrize(
    ("method", "path", "query"), PATH_ROUTES + QUERY_ROUTES, ids=map(_route_id, PATH_ROUTES + QUERY_ROUTES)
)
async def test_no_card_of_anyone_else_leaks_through_an_id(platform, matrix, method, path, query) -> None:
    ids, mine = matrix.ids, matrix.live
    if query == "done=removed&card={id}":
        ids, mine = replace(ids, removed=()), matrix.removed  # A's own removed card is the one this names
    elif query == "error=expired_default&card={id}":
        mine = matrix.expired

    async def state() -> object:  # every card row of the three merchants: a POST must change none
        return [await _snapshot(platform, host) for host in (GREENFIELD, PINNACLE, NORTHWIND)]

    await assert_no_cross_tenant_leak(
        matrix.me.client, method, path, query, ids=ids, mine=None if method == "POST" else mine, state=state
    )


def test_the_matrix_covers_every_cards_route_that_takes_an_id() -> None:
    """A route added later with a card id in its path or its query must join the lists above."""
    taking_ids = set()
    for handler in CARD_ROUTES:
        names = [name for name in inspect.signature(handler.fn).parameters if name == "card" or name.endswith("_id")]
        for method in handler.http_methods:
            for route in handler.paths:
                for name in names:
                    if f"{{{name}" in route:
                        taking_ids.add((method, re.sub(r"\{[a-z_]+(:[a-z]+)?\}", "{id}", route), "path"))
                    else:
                        taking_ids.add((method, route, name))
    tested = {(method, path, "path") for method, path, _ in PATH_ROUTES} | {
        (method, path, query.rsplit("&", 1)[-1].split("=")[0]) for method, path, query in QUERY_ROUTES
    }
    assert taking_ids, "no cards route takes a card id: the lookup above is broken"
    assert taking_ids <= tested, f"not in the matrix: {sorted(taking_ids - tested)}"
