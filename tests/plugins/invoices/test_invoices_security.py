"""Other people's invoices, forged requests, what the settings forbid and merchants without the plugin.

Every route and the PDF are tried with another customer's, another merchant's and another ISO's
invoice ids (404, nothing changed), every POST without its CSRF token (403, nothing changed),
forbidden actions are absent and answer 403 when forged (nothing written), and every route on a
merchant where the plugin is off answers 404.
"""

from __future__ import annotations

from typing import Any

from plugins.invoices.conftest import FAR, MAIN, OFF, RESTRICTED, SAVED_ONLY, SIBLING, Shopper, ShopperFactory

from portal.db.engine import fetch, tenant_transaction
from portal.testing import Foreign, ForeignIds, assert_no_cross_tenant_leak

UNKNOWN = "inv_01jzzzzzzzzzzzzzzzzzzzzzzz"
GET_ROUTES = ["/invoices/{id}", "/invoices/{id}.pdf", "/invoices/{id}/pay", "/invoices/{id}/pay/card"]
POST_ROUTES = {
    "/invoices/{id}/pay": {"pay_key": "k" * 32, "card": ""},
    "/invoices/{id}/pay/card": {"pay_key": "q" * 32, "payment_token": "tok_nothing"},
}


async def rows(shopper: Shopper, invoice_id: str) -> dict[str, Any]:
    """What a POST could change: the invoice, its attempts, pay keys, kept PDFs and audit records."""
    async with tenant_transaction(shopper.tenant.merchant.iso_id):
        invoice = await fetch("SELECT status, amount_paid, amount_due FROM portal_billing_invoice WHERE id = $1",
                              invoice_id)  # fmt: skip
        attempts = await fetch("SELECT count(*) AS n FROM portal_billing_payment_attempt WHERE invoice_id = $1",
                               invoice_id)  # fmt: skip
        keys = await fetch("SELECT count(*) AS n FROM invoices_pay_key WHERE invoice_id = $1", invoice_id)
        pdfs = await fetch("SELECT count(*) AS n FROM invoices_pdf WHERE invoice_id = $1", invoice_id)
        audit = await fetch("SELECT count(*) AS n FROM portal_audit_event WHERE target_id = $1", invoice_id)
    return {"invoice": invoice, "attempts": attempts, "keys": keys, "pdfs": pdfs, "audit": audit}


async def test_no_route_reaches_anyone_elses_invoice(shopper: ShopperFactory) -> None:
    email = "jane-invoices-everywhere@example.com"
    jane = await shopper(MAIN, email=email)
    await jane.card()
    mine = await jane.invoice(1000)
    sam = await shopper(MAIN)
    janes_sibling = await shopper(SIBLING, email=email)
    janes_far = await shopper(FAR, email=email)
    owners = {"other customer": sam, "other merchant": janes_sibling, "other ISO": janes_far}
    foreign = {}
    for n, (label, owner) in enumerate(owners.items()):
        await owner.card()
        foreign[label] = await owner.invoice(270000 + n * 1111, description=f"Secret order {label}")
    ids = ForeignIds(
        other_customer=Foreign(foreign["other customer"].id, ("$2,700.00", "Secret order")),
        other_merchant=Foreign(foreign["other merchant"].id, ("$2,711.11", "Secret order")),
        other_iso=Foreign(foreign["other ISO"].id, ("$2,722.22", "Secret order")),
        unknown=UNKNOWN,
    )

    async def state() -> object:
        return [await rows(owners[label], foreign[label].id) for label in owners]

    for route in GET_ROUTES:
        await assert_no_cross_tenant_leak(jane.client, "GET", route, ids=ids, mine=Foreign(mine.id), state=state)
    for route, data in POST_ROUTES.items():
        await assert_no_cross_tenant_leak(jane.client, "POST", route, ids=ids, data=data, state=state)
    await assert_no_cross_tenant_leak(jane.client, "GET", "/invoices", "after={id}", ids=ids)
    await assert_no_cross_tenant_leak(jane.client, "GET", "/invoices", "status=open&after={id}", ids=ids)
    assert (await jane.client.get(f"/invoices/{mine.id}")).status_code == 200  # her own is there


async def test_no_one_reads_anyone_elses_receipt(shopper: ShopperFactory) -> None:
    jane = await shopper()
    sam = await shopper()
    await sam.card()
    invoice = await sam.invoice(4321)
    form = await sam.form(f"/invoices/{invoice.id}/pay")
    assert (await sam.client.post(f"/invoices/{invoice.id}/pay", data=form)).status_code == 303
    (attempt,) = await sam.attempts(invoice.id)
    assert (await sam.client.get(f"/payments/{attempt['id']}")).status_code == 200
    theirs = await jane.client.get(f"/payments/{attempt['id']}")
    assert theirs.status_code == 404 and "$43.21" not in theirs.text
    assert (await jane.client.get("/payments/pay_01jzzzzzzzzzzzzzzzzzzzzzzz")).status_code == 404
    assert (await jane.client.get("/payments/garbage")).status_code == 404
    assert "$43.21" not in (await jane.client.get("/payments")).text


async def test_every_post_needs_its_csrf_token(shopper: ShopperFactory) -> None:
    jane = await shopper()
    await jane.card()
    invoice = await jane.invoice(5000)
    before = await rows(jane, invoice.id)
    for route, data in POST_ROUTES.items():
        path = route.replace("{id}", invoice.id)
        missing = await jane.client.post(path, data=data)
        wrong = await jane.client.post(path, data={**data, "csrf_token": "not-the-token"})
        assert (missing.status_code, wrong.status_code) == (403, 403), path
    assert await rows(jane, invoice.id) == before


async def test_what_the_merchant_forbids_is_absent_and_refused(shopper: ShopperFactory) -> None:
    jane = await shopper(RESTRICTED)
    card = await jane.card()
    invoice = await jane.invoice(5000)
    listed = await jane.client.get("/invoices")
    detail = await jane.client.get(f"/invoices/{invoice.id}")
    assert listed.status_code == detail.status_code == 200
    assert f"/invoices/{invoice.id}/pay" not in listed.text and f"/invoices/{invoice.id}/pay" not in detail.text
    assert (await jane.client.get(f"/invoices/{invoice.id}/pay")).status_code == 403
    assert (await jane.client.get(f"/invoices/{invoice.id}/pay/card")).status_code == 403
    csrf = (await jane.form(f"/invoices/{invoice.id}"))["csrf_token"]
    before = await rows(jane, invoice.id)
    for path, data in (
        (f"/invoices/{invoice.id}/pay", {"pay_key": "a" * 32, "card": card.id}),
        (f"/invoices/{invoice.id}/pay/card", {"pay_key": "b" * 32, "payment_token": await jane.token()}),
    ):
        forged = await jane.client.post(path, data={**data, "csrf_token": csrf})
        assert forged.status_code == 403, path
        assert "not available" in forged.text
    assert await rows(jane, invoice.id) == before

    saved = await shopper(SAVED_ONLY)
    await saved.card()
    theirs = await saved.invoice(5000)
    pay_page = await saved.client.get(f"/invoices/{theirs.id}/pay")
    assert pay_page.status_code == 200 and "/pay/card" not in pay_page.text
    assert (await saved.client.get(f"/invoices/{theirs.id}/pay/card")).status_code == 403
    forged = await saved.client.post(
        f"/invoices/{theirs.id}/pay/card",
        data={"csrf_token": (await saved.form(f"/invoices/{theirs.id}/pay"))["csrf_token"], "pay_key": "c" * 32,
              "payment_token": await saved.token()},
    )  # fmt: skip
    assert forged.status_code == 403
    assert (await saved.get(theirs.id)).status == "open" and await saved.attempts(theirs.id) == []


async def test_void_invoices_show_only_where_the_merchant_shows_them(shopper: ShopperFactory) -> None:
    from portal.billing import invoices
    from portal.events.bus import SYSTEM

    for slug, shown in ((MAIN, True), (SIBLING, False)):
        jane = await shopper(slug)
        invoice = await jane.invoice(777)
        async with tenant_transaction(jane.tenant.merchant.iso_id):
            await invoices.void(jane.tenant, invoice.id, now=invoice.created_at, actor=SYSTEM)
        listed = await jane.client.get("/invoices")
        page = await jane.client.get(f"/invoices/{invoice.id}")
        assert (invoice.id in listed.text, page.status_code) == ((True, 200) if shown else (False, 404))
        if shown:
            assert ">Void<" in page.text and f"/invoices/{invoice.id}/pay" not in page.text


async def test_the_pages_are_missing_where_the_plugin_is_off(shopper: ShopperFactory) -> None:
    jane = await shopper(OFF)
    invoice = await jane.invoice(999)
    for path in ("/invoices", f"/invoices/{invoice.id}", f"/invoices/{invoice.id}.pdf", f"/invoices/{invoice.id}/pay",
                 "/payments"):  # fmt: skip
        assert (await jane.client.get(path)).status_code == 404, path
    overview = await jane.client.get("/")
    assert "Outstanding" not in overview.text and 'href="/invoices"' not in overview.text
