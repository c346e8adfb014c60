"""Saving a card through an update link: charged once however often *Save* is pressed; a decline keeps the link."""

from __future__ import annotations

import asyncio

from support.recovery import GOOD_CARD, SOFT_DECLINE, Shop, land, link_in, tokenize


async def _landed(shop: Shop, csrf_of):
    customer, _, invoice_id = await shop.failing_subscription()
    _, token = link_in(await shop.mail_to(customer.email, "didn't go through"))
    client, landing = await land(shop, token)
    assert landing.status_code == 303
    page = await client.get("/payment-methods/update")
    return customer, invoice_id, token, client, csrf_of(page.text)


async def test_two_clicks_on_save_charge_once(shop: Shop, csrf_of) -> None:
    _, invoice_id, _, client, csrf = await _landed(shop, csrf_of)
    tokens = [await tokenize(shop, GOOD_CARD), await tokenize(shop, GOOD_CARD)]
    answers = await asyncio.gather(
        *(client.post("/payment-methods/update", data={"csrf_token": csrf, "payment_token": t}) for t in tokens)
    )
    assert all(answer.status_code == 303 for answer in answers)
    assert "/payment-recovery/done" in [answer.headers["location"] for answer in answers]
    assert [a["outcome"] for a in await shop.attempts(invoice_id)] == ["declined", "approved"]
    sales = await shop.row(
        "SELECT count(*) AS n FROM portal_sandbox_transaction WHERE merchant_id = $1 AND order_id LIKE $2 "
        "AND outcome = 'approved'",
        shop.tenant.merchant.id,
        invoice_id + "-%",
    )
    assert sales == {"n": 1}
    invoice = await shop.row("SELECT status, amount_paid FROM portal_billing_invoice WHERE id = $1", invoice_id)
    assert invoice == {"status": "paid", "amount_paid": 3900}


async def test_a_retry_that_declines_keeps_the_link_usable(shop: Shop, csrf_of) -> None:
    customer, invoice_id, token, client, csrf = await _landed(shop, csrf_of)
    saved = await client.post(
        "/payment-methods/update", data={"csrf_token": csrf, "payment_token": await tokenize(shop, SOFT_DECLINE)}
    )
    assert (saved.status_code, saved.headers["location"]) == (303, "/payment-recovery/declined?reason=declined")
    page = await client.get(saved.headers["location"])
    assert page.status_code == 200
    assert "Your bank declined the new card." in page.text and "Still unpaid: $39.00 for Monthly Bread Box" in page.text
    assert 'href="/payment-methods/update">Try another card' in page.text
    assert (await shop.case(invoice_id))["status"] == "open"
    _, again = await land(shop, token)
    assert (again.status_code, again.headers["location"]) == (303, "/payment-methods/update")
    failed = [event for event in await shop.events(customer.id) if event["type"] == "recovery.retry_failed"]
    assert [(event["data"]["trigger"], event["data"]["response_code"]) for event in failed] == [("card_update", 201)]


async def test_the_pages_need_a_session_and_the_plugin(shop: Shop, make, csrf_of) -> None:
    anonymous = shop.client_factory(shop.host)
    for path in ("/payment-recovery/done", "/payment-recovery/declined?reason=final"):
        answer = await anonymous.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    off = await make(recovery=None)
    for path in ("/payment-recovery/done", "/payment-recovery/declined"):
        assert (await off.client_factory(off.host).get(path)).status_code == 404
    _, _, _, client, _ = await _landed(shop, csrf_of)
    unknown = await client.get("/payment-recovery/declined?reason=<script>")
    assert unknown.status_code == 200 and "Your bank declined the new card." in unknown.text
    assert "<script>" not in unknown.text.split("</main>")[0].split('<main id="main"')[1]
    assert (await client.get("/payment-recovery/declined?reason=%00")).status_code == 400
    assert (await client.post("/payment-methods/update", data={"payment_token": "x"})).status_code == 403
