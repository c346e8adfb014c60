"""The recovery loop over HTTP: decline, dunning email, the link, a new card, the retry, paid."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from portal.access.links import LinkRefusedError, redeem
from portal.db.engine import tenant_transaction
from support.recovery import GOOD_CARD, Shop, land, link_in, text_of, tokenize


async def test_a_declined_renewal_is_emailed_and_a_new_card_recovers_it(shop: Shop, csrf_of) -> None:
    customer, subscription, invoice_id = await shop.failing_subscription()

    case = await shop.case(invoice_id)
    assert (case["status"], case["cause"], case["amount"], case["emails"]) == ("open", "soft", 3900, 1)
    dunning = await shop.mail_to(customer.email, "Your recent payment didn't go through")
    text = text_of(dunning)
    assert "charge of $39.00 for Monthly Bread Box" in text and "you'll stay on your current plan" in text
    assert "Update Payment Method" in text_of(dunning, "html")
    assert str(dunning.message["From"]).startswith("Bread & Co <")
    url, token = link_in(dunning)
    assert urlsplit(url).hostname == shop.host

    client, landing = await land(shop, token)
    assert (landing.status_code, landing.headers["location"]) == (303, "/payment-methods/update")
    page = await client.get("/payment-methods/update")
    assert page.status_code == 200
    assert "Payment not received:</strong> $39.00 for Monthly Bread Box on" in page.text

    saved = await client.post(
        "/payment-methods/update",
        data={"csrf_token": csrf_of(page.text), "payment_token": await tokenize(shop, GOOD_CARD)},
    )
    assert (saved.status_code, saved.headers["location"]) == (303, "/payment-recovery/done")
    done = await client.get("/payment-recovery/done")
    assert "$39.00 for Monthly Bread Box" in done.text and "Payment received" in done.text

    invoice = await shop.row("SELECT status, amount_paid FROM portal_billing_invoice WHERE id = $1", invoice_id)
    assert invoice == {"status": "paid", "amount_paid": 3900}
    after = await shop.row("SELECT status, price_id FROM portal_billing_subscription WHERE id = $1", subscription.id)
    assert after == {"status": "active", "price_id": subscription.price}
    assert (await shop.case(invoice_id))["status"] == "recovered"

    await shop.work()  # the receipt, the link-opened note and the invoice.paid handler
    receipt = await shop.mail_to(customer.email, "Payment received: $39.00 for Monthly Bread Box")
    assert "Visa •••• 1111" in text_of(receipt)
    types = [event["type"] for event in await shop.events(customer.id)]
    assert types == [
        "recovery.email_sent",
        "recovery.retry_succeeded",
        "recovery.recovered",
        "recovery.link_opened",
    ]
    for event in await shop.events(customer.id):
        assert token not in json.dumps(event["data"])
    again = await shop.client_factory(shop.host).get(f"/access/{token}")
    assert again.status_code == 410  # spent once the invoice is paid


async def test_the_link_is_refused_after_seven_days_changed_or_on_another_host(shop: Shop, make) -> None:
    customer, _, _ = await shop.failing_subscription()
    _, token = link_in(await shop.mail_to(customer.email, "didn't go through"))
    issued = await shop.row(
        "SELECT issued_at, expires_at FROM portal_link WHERE merchant_id = $1 AND customer_id = $2 AND purpose = $3",
        shop.tenant.merchant.id,
        customer.id,
        "update_payment",
    )
    assert (issued["expires_at"] - issued["issued_at"]).days == 7

    async with tenant_transaction(shop.tenant.merchant.iso_id):
        with pytest.raises(LinkRefusedError) as refused:
            await redeem(shop.tenant, token, now=issued["expires_at"] + timedelta(seconds=61))
    assert refused.value.reason == "expired"

    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    _, changed = await land(shop, flipped)
    assert changed.status_code == 400
    other = await make()
    elsewhere = await other.client_factory(other.host).get(f"/access/{token}")
    assert elsewhere.status_code in (400, 404)
    _, still = await land(shop, token)
    assert still.status_code == 303
