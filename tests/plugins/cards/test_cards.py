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
    vault_cards,
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
        page = await jane.follow(response, f"/payment-methods/{card}/remove?error=card_required")
        assert "Your Monthly Bread Box subscription needs a card on file" in page.text
        assert "Add another card first" in page.text and 'href="/payment-methods/new"' in page.text
        assert "Remove card</button>" not in page.text
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
    ("number", "code", "message"),
    [
        (EXPIRED, "card_expired", "This card has expired. Please use another card."),
        (DECLINES, "insufficient_funds", "Your bank declined this card for insufficient funds."),
        (PROCESSOR_ERROR, "processor", "The card processor could not complete this just now."),
    ],
    ids=["expired-223", "insufficient-funds-202", "processor-error-400"],
)
async def test_refused_cards_are_explained_and_not_stored(platform, shopper, number, code, message) -> None:
    jane = await shopper()
    response = await jane.add(number)
    # post/redirect/get: the address bar ends on a page that can be reloaded without resubmitting
    page = await jane.follow(response, f"/payment-methods/new?error={code}")
    assert message in page.text
    assert 'role="alert"' in page.text and "data-tokenization-key" in page.text  # the form again
    assert 'id="make_default" name="make_default">' in page.text  # not ticked: it was not ticked before
    assert await cards_of(platform, GREENFIELD, jane.id) == []
    assert await events_of(platform, GREENFIELD, jane.id) == []


async def test_a_declined_card_comes_back_with_make_default_still_ticked(platform, shopper) -> None:
    jane = await shopper()
    response = await jane.add(DECLINES, make_default=True)
    page = await jane.follow(response, "/payment-methods/new?error=insufficient_funds&make_default=on")
    assert 'id="make_default" name="make_default" checked>' in page.text
    assert await cards_of(platform, GREENFIELD, jane.id) == []


@pytest.mark.parametrize(
    "query",
    ["error=%3Cb%3Ehello%3C%2Fb%3E", "error=Your+bank+approved+everything", "error=limit", "error=duplicate&card=x"],
)
async def test_error_codes_in_the_address_are_never_echoed(platform, shopper, query) -> None:
    jane = await shopper()
    await jane.add(VISA)
    for path in ("/payment-methods/new", "/payment-methods/update", "/payment-methods"):
        page = await jane.client.get(f"{path}?{query}")
        assert page.status_code == 200
        assert 'role="alert"' not in page.text  # an unknown code, or one that does not apply, shows nothing
        # The footer's language switch carries the address back, percent-encoded; the page itself says nothing of it.
        main = page.text.split('<main id="main"', 1)[1].split("</main>", 1)[0]
        assert "hello" not in main and "approved everything" not in page.text
        assert "<b>hello" not in page.text and "&lt;b&gt;hello" not in page.text


async def test_the_same_card_again_is_not_added_twice(platform, shopper) -> None:
    jane = await shopper()
    card = _location_card(await jane.add(VISA))
    response = await jane.add(VISA)  # brand, last four and expiry of a card on file
    page = await jane.follow(response, f"/payment-methods?error=duplicate&card={card}")
    assert "Visa ending in 1111 is already on file, so it was not added again." in page.text
    assert 'role="alert"' in page.text and page.text.count('class="card card-item"') == 1

    rows = await cards_of(platform, GREENFIELD, jane.id)
    assert [(r["id"], r["is_default"], r["removed_at"]) for r in rows] == [(card, True, None)]
    # the second vault entry the gateway made is deleted again; the card on file keeps its own
    assert [v["billing_id"] for v in await vault_cards(platform, GREENFIELD, rows[0]["vault_id"])] == [
        rows[0]["billing_id"]
    ]
    events = await events_of(platform, GREENFIELD, jane.id)
    assert [e["type"] for e in events] == ["payment_method.added", "payment_method.default_changed"]

    other = _location_card(await jane.add(VISA, exp="01 / 31"))  # another expiry is another card
    assert other != card and len(await cards_of(platform, GREENFIELD, jane.id)) == 2


async def test_the_same_card_again_as_the_default_only_moves_the_default(platform, shopper) -> None:
    jane = await shopper()
    visa = _location_card(await jane.add(VISA))
    mastercard = _location_card(await jane.add(MASTERCARD))
    response = await jane.add(MASTERCARD, make_default=True)
    page = await jane.follow(response, f"/payment-methods?done=existing_default&card={mastercard}")
    assert "Mastercard ending in 4444 was already on file and is now your default card." in page.text

    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert set(rows) == {visa, mastercard}
    assert rows[mastercard]["is_default"] and not rows[visa]["is_default"]
    assert len(await vault_cards(platform, GREENFIELD, rows[visa]["vault_id"])) == 2
    events = await events_of(platform, GREENFIELD, jane.id)
    assert [e["type"] for e in events] == [
        "payment_method.added",
        "payment_method.default_changed",
        "payment_method.added",
        "payment_method.default_changed",  # and no third "added"
    ]
    assert events[-1]["data"] == {"id": mastercard, "customer": jane.id, "previous": visa, "reason": "chosen"}

    again = await jane.add(MASTERCARD, make_default=True)  # already the default: nothing changes
    await jane.follow(again, f"/payment-methods?error=duplicate&card={mastercard}")
    assert len(await events_of(platform, GREENFIELD, jane.id)) == 4


async def test_a_payment_token_works_once(platform, shopper) -> None:
    jane = await shopper()
    token = await jane.tokenize(VISA)
    form = {"csrf_token": await jane.csrf("/payment-methods/new"), "payment_token": token}
    assert (await jane.client.post("/payment-methods", data=form)).status_code == 303
    again = await jane.client.post("/payment-methods", data=form)
    page = await jane.follow(again, "/payment-methods/new?error=details_expired")
    assert "The card details expired before they reached the processor. Please enter them again." in page.text
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
    refused = await sam.client.post("/payment-methods", data=form)
    assert refused.headers["location"] == "/payment-methods/new?error=details_expired"
    assert await cards_of(platform, GREENFIELD, sam.id) == []


async def test_an_empty_or_missing_token_is_a_clear_error(platform, shopper) -> None:
    jane = await shopper()
    response = await jane.client.post("/payment-methods", data={"csrf_token": await jane.csrf("/payment-methods/new")})
    page = await jane.follow(response, "/payment-methods/new?error=no_details")
    assert "The card details did not arrive. Please enter them again." in page.text


async def test_the_overview_widget_and_nav(platform, shopper) -> None:
    jane = await shopper()
    overview = await jane.client.get("/")
    assert 'href="/payment-methods"' in overview.text and "No card on file yet." in overview.text
    await jane.add(VISA)
    overview = await jane.client.get("/")
    assert "Visa ending in 1111" in overview.text and "Default" in overview.text
    listing = await jane.client.get("/payment-methods")
    assert re.search(r'href="/payment-methods"\s+aria-current="page"', listing.text)
