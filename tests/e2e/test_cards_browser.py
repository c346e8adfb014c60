"""Cards on file in Chromium: Jane's signed link, the hosted card fields, webhooks, axe-core.

Runs at the phone (390 x 844) and the desktop viewport. Every step's webhook must reach a loopback
receiver that verifies its Standard Webhooks signature.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from playwright.async_api import Page, expect

from portal.db.engine import fetch, tenant_transaction
from portal.testing import customer_id
from support.browser import LivePortal, Viewport, axe_check, fill_card, sign_in
from support.receiver import Receiver

GREENFIELD = "t-greenfield"
JANE = "jane@globalco.com"
VISA = "4111 1111 1111 1111"
MASTERCARD = "5555 5555 5555 4444"


async def clear_cards(live: LivePortal, email: str) -> str:
    """Take the customer's cards off file so each run starts with none; return the customer id."""
    tenant = await live.tenant(GREENFIELD)
    customer = await customer_id(GREENFIELD, email)
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            "UPDATE portal_payment_method SET removed_at = now(), is_default = false "
            "WHERE customer_id = $1 AND removed_at IS NULL",
            customer,
        )
    return customer


async def event_about(receiver: Receiver, event_type: str, **fields: Any) -> dict[str, Any]:
    """The webhook of ``event_type`` whose object has ``fields``."""
    return await receiver.wait_for_event(
        event_type,
        seconds=15,
        where=lambda event: all(event["data"]["object"].get(k) == v for k, v in fields.items()),
    )


def card_row(page: Page, description: str):  # type: ignore[no-untyped-def]
    return page.locator("li.card-item", has_text=description)


async def assert_reflows(page: Page, viewport: Viewport) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport.width, f"the page is {width} px wide at {viewport.name} ({viewport.width})"


async def test_jane_manages_her_cards(
    page: Page, viewport: Viewport, live_portal: LivePortal, webhook_receiver
) -> None:
    jane = await clear_cards(live_portal, JANE)
    await webhook_receiver.register(
        GREENFIELD, ["payment_method.added", "payment_method.removed", "payment_method.default_changed"]
    )
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on(
        "response",
        lambda response: problems.append(f"{response.status} {response.url}") if response.status == 404 else None,
    )
    submitted: list[str] = []  # what the portal's own page sends when a card form is submitted
    page.on(
        "request",
        lambda request: (
            submitted.append(request.post_data or "")
            if request.method == "POST" and request.url.endswith("/payment-methods")
            else None
        ),
    )

    await sign_in(page, live_portal, GREENFIELD, JANE)
    await page.get_by_role("navigation", name="Portal").get_by_role("link", name="Payment methods").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Payment methods")
    await expect(page.get_by_text("You have no cards on file.")).to_be_visible()
    await axe_check(page)

    # 1. Add 4111 1111 1111 1111 and make it the default.
    await page.get_by_role("link", name="Add a card").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Add a card")
    await expect(page.get_by_role("button", name="Add card")).to_be_enabled()  # the hosted fields are ready
    await axe_check(page)
    await assert_reflows(page, viewport)
    await fill_card(page, VISA)
    await page.get_by_label("Make this my default card").check()
    await page.get_by_role("button", name="Add card").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Visa ending in 1111 was added and is now your default card."
    )
    visa = card_row(page, "Visa ending in 1111")
    await expect(visa.get_by_text("Default", exact=True)).to_be_visible()
    added = await event_about(webhook_receiver, "payment_method.added", customer=jane, last4="1111")
    visa_id = added["data"]["object"]["id"]
    assert added["data"]["object"]["is_default"] is True and added["data"]["object"]["brand"] == "visa"
    await event_about(webhook_receiver, "payment_method.default_changed", id=visa_id, reason="first_card")

    # 2. Add a second card; it is not the default.
    await page.get_by_role("link", name="Add a card").click()
    await expect(page.get_by_role("button", name="Add card")).to_be_enabled()
    await fill_card(page, MASTERCARD, expiry="08 / 31")
    await page.get_by_role("button", name="Add card").click()
    await expect(page.get_by_role("status")).to_contain_text("Mastercard ending in 4444 was added.")
    mastercard = card_row(page, "Mastercard ending in 4444")
    await expect(mastercard.get_by_text("Default", exact=True)).to_have_count(0)
    second = await event_about(webhook_receiver, "payment_method.added", customer=jane, last4="4444")
    mastercard_id = second["data"]["object"]["id"]
    assert second["data"]["object"]["is_default"] is False
    await axe_check(page)
    await assert_reflows(page, viewport)

    # 3. Make the Mastercard the default.
    await mastercard.get_by_role("button", name="Make default").click()
    await expect(page.get_by_role("status")).to_contain_text("Mastercard ending in 4444 is now your default card.")
    await expect(card_row(page, "Mastercard ending in 4444").get_by_text("Default", exact=True)).to_be_visible()
    await event_about(
        webhook_receiver, "payment_method.default_changed", id=mastercard_id, previous=visa_id, reason="chosen"
    )

    # 4. Remove the Visa.
    await card_row(page, "Visa ending in 1111").get_by_role("link", name="Remove").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Remove Visa ending in 1111?")
    await axe_check(page)
    await page.get_by_role("button", name="Remove card").click()
    await expect(page.get_by_role("status")).to_contain_text("Visa ending in 1111 was removed.")
    await expect(card_row(page, "Visa ending in 1111")).to_have_count(0)
    removed = await event_about(webhook_receiver, "payment_method.removed", id=visa_id)
    assert removed["data"]["object"]["customer"] == jane

    # The Overview shows the default card.
    await page.get_by_role("navigation", name="Portal").get_by_role("link", name="Overview").click()
    widget = page.get_by_role("region", name="Payment methods")
    await expect(widget).to_contain_text("Mastercard ending in 4444")
    await axe_check(page)
    await assert_reflows(page, viewport)

    assert len(submitted) == 2  # the two cards; only a payment token travels with each
    for body in submitted:
        fields = dict(parse_qsl(body))
        assert set(fields) <= {"csrf_token", "payment_token", "make_default"}, fields
        assert fields["payment_token"].startswith("sbx_tok_")
        assert "4111" not in body and "5555" not in body
    assert problems == []
    assert webhook_receiver.failures == []
    delivered = sorted((e["audit_seq"], e["type"]) for e in webhook_receiver.events())  # delivery order may vary
    assert [event_type for _, event_type in delivered] == [
        "payment_method.added",
        "payment_method.default_changed",
        "payment_method.added",
        "payment_method.default_changed",
        "payment_method.removed",
    ]


async def test_a_refused_card_is_explained(page: Page, viewport: Viewport, live_portal: LivePortal) -> None:
    await clear_cards(live_portal, JANE)
    await sign_in(page, live_portal, GREENFIELD, JANE)
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    await page.goto(live_portal.url(GREENFIELD, "/payment-methods/new"))
    await expect(page.get_by_role("button", name="Add card")).to_be_enabled()
    await fill_card(page, "4000 0000 0000 0002")  # declined for insufficient funds (NMI 202)
    await page.get_by_role("button", name="Add card").click()
    # post/redirect/get: the address bar shows a page, not the form's POST, and the error has the focus
    await expect(page).to_have_url(re.compile(r"/payment-methods/new\?error=insufficient_funds$"))
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Your bank declined this card for insufficient funds.")
    await expect(alert).to_be_focused()
    await axe_check(page)
    card_posts = [url for url in posts if url.endswith("/payment-methods")]
    assert len(card_posts) == 1
    await page.reload()  # a GET again: nothing is resubmitted
    await expect(page.get_by_role("alert")).to_contain_text("insufficient funds")
    await expect(page.get_by_role("button", name="Add card")).to_be_enabled()
    assert [url for url in posts if url.endswith("/payment-methods")] == card_posts

    await fill_card(page, "4000 0000 0000 0069")
    await page.get_by_role("button", name="Add card").click()
    await expect(page).to_have_url(re.compile(r"/payment-methods/new\?error=card_expired$"))
    await expect(page.get_by_role("alert")).to_contain_text("This card has expired. Please use another card.")
    await axe_check(page)

    await fill_card(page, "4111 1111 1111 1112")  # fails the Luhn check in the hosted field
    await page.get_by_role("button", name="Add card").click()
    await expect(page.locator("#card-number-error")).to_have_text("Card number is invalid")
    await expect(page.get_by_role("button", name="Add card")).to_be_enabled()
    await axe_check(page)


async def test_an_update_payment_link_replaces_the_card(
    page: Page, viewport: Viewport, live_portal: LivePortal, webhook_receiver
) -> None:
    jane = await clear_cards(live_portal, JANE)
    await webhook_receiver.register(GREENFIELD, ["payment_method.default_changed"])
    await sign_in(page, live_portal, GREENFIELD, JANE)
    await page.goto(live_portal.url(GREENFIELD, "/payment-methods/new"))
    await expect(page.get_by_role("button", name="Add card")).to_be_enabled()
    await fill_card(page, VISA)
    await page.get_by_role("button", name="Add card").click()
    await expect(page.get_by_role("status")).to_contain_text("Visa ending in 1111 was added.")

    link = await sign_in(page, live_portal, GREENFIELD, JANE, purpose="update_payment")
    assert page.url == live_portal.url(GREENFIELD, "/payment-methods/update")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Update your card")
    await expect(page.get_by_role("button", name="Update card")).to_be_enabled()
    await axe_check(page)
    await assert_reflows(page, viewport)
    await fill_card(page, MASTERCARD, expiry="08 / 31")
    await page.get_by_role("button", name="Update card").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Mastercard ending in 4444 is now your default card. Thank you for updating it."
    )
    changed = await event_about(webhook_receiver, "payment_method.default_changed", customer=jane, reason="replaced")
    assert changed["data"]["object"]["previous"] is not None

    reopened = await page.goto(live_portal.url(GREENFIELD, f"/access/{link.token}"))
    assert reopened is not None and reopened.status == 410  # the link did its job and is closed
    await expect(page.get_by_role("heading", level=1)).to_have_text("This link was already used")
    await axe_check(page)
