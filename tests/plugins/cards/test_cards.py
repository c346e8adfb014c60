"""Cards on file through the portal's pages, with the sandbox gateway and the real database."""

from __future__ import annotations

import re

import pytest
from plugins.cards.conftest import (
    DECLINES,
    EXPIRED,
    GREENFIELD,
    MASTERCARD,
    PROCESSOR_ERROR,
    VISA,
    cards_of,
    events_of,
)

import support.card_required_plugin as card_required


def _location_card(response) -> str:
    assert response.status_code == 303, response.text
    found = re.search(r"card=(pm_[0-9a-z]+)", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


async def test_the_first_card_becomes_the_default(platform, shopper) -> None:
    jane = await shopper()
    response = await jane.add(VISA)
    card = _location_card(response)
    assert response.headers["location"].startswith("/payment-methods?done=added")

    page = await jane.client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Visa ending in 1111 was added." in page.text
    assert "Default</span>" in page.text and "Expires 12/2030" in page.text
    assert "411111" not in page.text  # not even the card's first digits are shown

    rows = await cards_of(platform, GREENFIELD, jane.id)
    assert [(r["id"], r["brand"], r["last4"], r["exp_month"], r["exp_year"], r["is_default"]) for r in rows] == [
        (card, "visa", "1111", 12, 2030, True)
    ]
    assert rows[0]["gateway"] == "sandbox" and rows[0]["vault_id"] and rows[0]["billing_id"]

    events = await events_of(platform, GREENFIELD, jane.id)
    assert [e["type"] for e in events] == ["payment_method.added", "payment_method.default_changed"]
    assert all(e["actor_type"] == "customer" and e["actor_id"] == jane.id for e in events)
    assert events[0]["data"] == {
        "id": card,
        "customer": jane.id,
        "type": "card",
        "brand": "visa",
        "last4": "1111",
        "exp_month": 12,
        "exp_year": 2030,
        "is_default": True,
        "gateway": "sandbox",
    }
    assert events[1]["data"] == {"id": card, "customer": jane.id, "previous": None, "reason": "first_card"}


async def test_a_second_card_then_choosing_it_as_default(platform, shopper) -> None:
    jane = await shopper()
    first = _location_card(await jane.add(VISA))
    second = _location_card(await jane.add(MASTERCARD))
    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert rows[first]["is_default"] and not rows[second]["is_default"]

    response = await jane.post(f"/payment-methods/{second}/default")
    assert response.status_code == 303
    assert response.headers["location"] == f"/payment-methods?done=default&card={second}"
    page = await jane.client.get(response.headers["location"])
    assert "Mastercard ending in 4444 is now your default card." in page.text

    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert rows[second]["is_default"] and not rows[first]["is_default"]
    events = await events_of(platform, GREENFIELD, jane.id)
    assert [e["type"] for e in events] == [
        "payment_method.added",
        "payment_method.default_changed",
        "payment_method.added",
        "payment_method.default_changed",
    ]
    assert events[-1]["data"] == {"id": second, "customer": jane.id, "previous": first, "reason": "chosen"}

    again = await jane.post(f"/payment-methods/{second}/default")  # already the default: no event
    assert again.status_code == 303
    assert len(await events_of(platform, GREENFIELD, jane.id)) == 4


async def test_adding_with_make_default_moves_the_default(platform, shopper) -> None:
    jane = await shopper()
    first = _location_card(await jane.add(VISA))
    second = _location_card(await jane.add(MASTERCARD, make_default=True))
    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert rows[second]["is_default"] and not rows[first]["is_default"]
    last = (await events_of(platform, GREENFIELD, jane.id))[-1]
    assert last["data"] == {"id": second, "customer": jane.id, "previous": first, "reason": "chosen"}


async def test_removing_the_default_promotes_the_newest_other_card(platform, shopper) -> None:
    jane = await shopper()
    first = _location_card(await jane.add(VISA))
    second = _location_card(await jane.add(MASTERCARD))
    third = _location_card(await jane.add(VISA, exp="01 / 31"))

    confirm = await jane.client.get(f"/payment-methods/{first}/remove")
    assert confirm.status_code == 200 and "Remove Visa ending in 1111?" in confirm.text
    response = await jane.post(f"/payment-methods/{first}/remove")
    assert response.headers["location"] == f"/payment-methods?done=removed&card={first}"
    page = await jane.client.get(response.headers["location"])
    assert "Visa ending in 1111 was removed." in page.text

    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert rows[first]["removed_at"] is not None and not rows[first]["is_default"]
    assert rows[third]["is_default"] and not rows[second]["is_default"]
    events = await events_of(platform, GREENFIELD, jane.id)
    assert [e["type"] for e in events[-2:]] == ["payment_method.removed", "payment_method.default_changed"]
    assert events[-2]["data"]["id"] == first and events[-2]["data"]["is_default"] is False
    assert events[-1]["data"] == {"id": third, "customer": jane.id, "previous": first, "reason": "removed"}


async def test_the_only_card_can_go_when_nothing_needs_it(platform, shopper) -> None:
    jane = await shopper()
    card = _location_card(await jane.add(VISA))
    response = await jane.post(f"/payment-methods/{card}/remove")
    assert response.status_code == 303
    page = await jane.client.get("/payment-methods")
    assert "You have no cards on file." in page.text
    last = (await events_of(platform, GREENFIELD, jane.id))[-1]
    assert last["data"] == {"id": None, "customer": jane.id, "previous": card, "reason": "removed"}
    # the vault entry went too: a new card starts a new customer vault
    again = _location_card(await jane.add(MASTERCARD))
    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert rows[again]["vault_id"] != rows[card]["vault_id"]


async def test_the_only_card_stays_while_a_subscription_needs_it(platform, shopper) -> None:
    jane = await shopper()
    card = _location_card(await jane.add(VISA))
    card_required.SUBSCRIBED[jane.id] = "Monthly Bread Box"
    try:
        response = await jane.post(f"/payment-methods/{card}/remove")
        assert response.status_code == 409
        assert "Your Monthly Bread Box subscription needs a card on file" in response.text
        assert "Add another card first" in response.text
        assert (await cards_of(platform, GREENFIELD, jane.id))[0]["removed_at"] is None

        other = _location_card(await jane.add(MASTERCARD))  # with a second card, the first may go
        assert (await jane.post(f"/payment-methods/{card}/remove")).status_code == 303
        rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
        assert rows[other]["is_default"] and rows[card]["removed_at"] is not None
    finally:
        card_required.SUBSCRIBED.pop(jane.id, None)
    types = [e["type"] for e in await events_of(platform, GREENFIELD, jane.id)]
    assert types.count("payment_method.removed") == 1


@pytest.mark.parametrize(
    ("number", "message", "status"),
    [
        (EXPIRED, "This card has expired. Please use another card.", 422),
        (DECLINES, "Your bank declined this card for insufficient funds.", 422),
        (PROCESSOR_ERROR, "The card processor could not complete this just now.", 422),
    ],
    ids=["expired-223", "insufficient-funds-202", "processor-error-400"],
)
async def test_refused_cards_are_explained_and_not_stored(platform, shopper, number, message, status) -> None:
    jane = await shopper()
    response = await jane.add(number)
    assert response.status_code == status
    assert message in response.text
    assert 'role="alert"' in response.text and "data-tokenization-key" in response.text  # the form again
    assert await cards_of(platform, GREENFIELD, jane.id) == []
    assert await events_of(platform, GREENFIELD, jane.id) == []


async def test_a_payment_token_works_once(platform, shopper) -> None:
    jane = await shopper()
    token = await jane.tokenize(VISA)
    form = {"csrf_token": await jane.csrf("/payment-methods/new"), "payment_token": token}
    assert (await jane.client.post("/payment-methods", data=form)).status_code == 303
    again = await jane.client.post("/payment-methods", data=form)
    assert again.status_code == 422
    assert "Please enter them again" in again.text
    assert len(await cards_of(platform, GREENFIELD, jane.id)) == 1


async def test_a_token_is_used_up_by_whoever_submits_it_first(platform, shopper) -> None:
    jane = await shopper()
    sam = await shopper(name="Sam")
    token = await sam.tokenize(VISA)
    # Like NMI's, a payment token is bound to the merchant, not to a customer: it is single-use,
    # so whoever submits it first gets the card and a second submission is refused.
    form = {"csrf_token": await jane.csrf("/payment-methods/new"), "payment_token": token}
    assert (await jane.client.post("/payment-methods", data=form)).status_code == 303
    form = {"csrf_token": await sam.csrf("/payment-methods/new"), "payment_token": token}
    assert (await sam.client.post("/payment-methods", data=form)).status_code == 422
    assert await cards_of(platform, GREENFIELD, sam.id) == []


async def test_an_empty_or_missing_token_is_a_clear_error(platform, shopper) -> None:
    jane = await shopper()
    response = await jane.client.post("/payment-methods", data={"csrf_token": await jane.csrf("/payment-methods/new")})
    assert response.status_code == 400
    assert "The card details did not arrive" in response.text


async def test_the_overview_widget_and_nav(platform, shopper) -> None:
    jane = await shopper()
    overview = await jane.client.get("/")
    assert 'href="/payment-methods"' in overview.text and "No card on file yet." in overview.text
    await jane.add(VISA)
    overview = await jane.client.get("/")
    assert "Visa ending in 1111" in overview.text and "Default" in overview.text
    listing = await jane.client.get("/payment-methods")
    assert re.search(r'href="/payment-methods"\s+aria-current="page"', listing.text)
