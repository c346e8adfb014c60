"""The recovery loop, closed, with every part real: the decline, the email, the link in Chromium, the retry.

Jane's trial ends on a card that goes on file but declines every charge (4000 0000 0000 0341);
the test clock moves past the renewal; the worker emails her the dunning email through the SMTP
server on loopback; the link from that email opens the card update page on a phone; a card that
works, typed into the hosted fields, pays the invoice and puts the subscription back on its plan.
Every step's webhook reaches a receiver on loopback that checks its signature.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from playwright.async_api import expect

from portal.billing import clock
from portal.billing.advance import advance_clock
from portal.db.engine import fetch
from portal.mail import MailCatcher
from portal.platform import Platform
from support.browser import LivePortal, axe_check, fill_card
from support.recovery import SOFT_DECLINE, link_in, make_shop, text_of

EVENTS = [
    "invoice.payment_failed",
    "recovery.email_sent",
    "recovery.link_opened",
    "recovery.retry_succeeded",
    "recovery.recovered",
    "invoice.paid",
    "subscription.updated",
]


async def test_a_dunning_link_lets_jane_update_her_card_and_pay(
    shared_tenants: Platform,
    portal_mail: MailCatcher,
    portal_client,
    live_portal: LivePortal,
    webhook_receiver,
    page_at,
    tmp_path: Path,
) -> None:
    shop = await make_shop(shared_tenants, portal_mail, portal_client, tmp_path)
    slug = shop.tenant.merchant.slug
    await webhook_receiver.register(slug, EVENTS)
    jane = await shop.ledger.customer()
    await shop.ledger.card(jane, SOFT_DECLINE)
    price = await shop.ledger.price(3900, name="Monthly Bread Box")
    now = await shop.now()
    subscription = await shop.ledger.subscribe(price, now=now, customer=jane, trial_end=now + timedelta(days=1))
    await advance_clock(shared_tenants, shop.tenant, now + timedelta(days=1, hours=1))  # the renewal declines

    dunning = await shop.mail_to(jane.email, "Your recent payment didn't go through")  # the worker sent it
    assert "charge of $39.00 for Monthly Bread Box" in text_of(dunning)
    url, token = link_in(dunning)
    assert url == live_portal.url(slug, f"/access/{token}")

    page = await page_at("phone")
    await page.goto(url)
    assert page.url == live_portal.url(slug, "/payment-methods/update")
    await expect(page.locator("#failed-charge")).to_contain_text("$39.00 for Monthly Bread Box on")
    assert await page.locator("#card-form").get_attribute("data-brand-color") == "#2e7d32"
    await expect(page.get_by_role("button", name="Update card")).to_be_enabled()
    await axe_check(page)
    await fill_card(page, "4111 1111 1111 1111")
    await page.get_by_role("button", name="Update card").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    assert page.url == live_portal.url(slug, "/payment-recovery/done")
    await expect(page.locator("#recovery-done")).to_contain_text("$39.00 for Monthly Bread Box")
    await axe_check(page)

    async with shop.ledger.tx():
        invoice = await fetch(
            "SELECT status FROM portal_billing_invoice WHERE subscription_id = $1 ORDER BY created_at DESC LIMIT 1",
            subscription.id,
        )
        after = await fetch("SELECT status, price_id FROM portal_billing_subscription WHERE id = $1", subscription.id)
    assert invoice[0]["status"] == "paid"
    assert (after[0]["status"], after[0]["price_id"]) == ("active", price.id)
    receipt = await shop.mail_to(jane.email, "Payment received: $39.00 for Monthly Bread Box", after=dunning.index)
    assert "Visa •••• 1111" in text_of(receipt)

    def about_jane(event: dict[str, object]) -> bool:
        return f'"{jane.id}"' in json.dumps(event["data"])

    for event_type in EVENTS:
        event = await webhook_receiver.wait_for_event(event_type, seconds=20, where=about_jane)
        assert token not in json.dumps(event)
    assert webhook_receiver.failures == []
    await shop.work()  # nothing of this merchant is left due for another test's worker
    assert await clock.merchant_now(shop.tenant.merchant.id, iso_id=shop.tenant.merchant.iso_id) > now
