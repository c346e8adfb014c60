"""Billing details: edited on the account page where the merchant allows it, printed on invoices and PDFs."""

from __future__ import annotations

import io

from plugins.invoices.conftest import RESTRICTED, Shopper, ShopperFactory
from pypdf import PdfReader

from portal.customers.billing import get_billing_details
from portal.db.engine import fetch, tenant_transaction

DETAILS = {
    "name": "Greenfield Catering Co",
    "line1": "12 Mill Street",
    "line2": "",
    "city": "Springfield",
    "postal_code": "62701",
    "state": "IL",
    "country": "us",
    "tax_id": "",
}


async def audit(jane: Shopper) -> list[dict[str, object]]:
    async with tenant_transaction(jane.tenant.merchant.iso_id):
        return await fetch(
            "SELECT type, actor_type, after::text AS after FROM portal_audit_event WHERE target_id = $1 ORDER BY seq",
            jane.customer.id,
        )


async def test_the_customer_edits_billing_details_shown_on_invoices_and_pdfs(shopper: ShopperFactory) -> None:
    jane = await shopper()
    listed = await jane.client.get("/invoices")
    assert 'href="/account/billing"' in listed.text
    form = await jane.form("/account/billing")
    saved = await jane.client.post("/account/billing", data={**form, **DETAILS})
    assert saved.status_code == 303 and saved.headers["location"] == "/account/billing?done=saved"
    page = await jane.client.get(saved.headers["location"])
    assert "your billing details were updated" in page.text and 'value="Greenfield Catering Co"' in page.text
    stored = await get_billing_details(jane.tenant, jane.customer.id)
    assert stored is not None and (stored.name, stored.country, stored.city) == (
        "Greenfield Catering Co",
        "US",
        "Springfield",
    )
    (event,) = await audit(jane)
    assert event["type"] == "customer.updated" and event["actor_type"] == "customer"
    assert "12 Mill Street" in str(event["after"])

    invoice = await jane.invoice(342000)
    detail = await jane.client.get(f"/invoices/{invoice.id}")
    for expected in ("Greenfield Catering Co", "12 Mill Street", "62701 Springfield", "IL", "US"):
        assert expected in detail.text, expected
    pdf = await jane.client.get(f"/invoices/{invoice.id}.pdf")
    text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Greenfield Catering Co" in text and "12 Mill Street" in text


async def test_invalid_details_are_named_and_nothing_is_stored(shopper: ShopperFactory) -> None:
    jane = await shopper()
    form = await jane.form("/account/billing")
    refused = await jane.client.post("/account/billing", data={**form, **DETAILS, "country": "XX"})
    assert refused.status_code == 400
    assert 'role="alert"' in refused.text and "Country code (such as US, GB, DE) is not an ISO" in refused.text
    assert 'aria-invalid="true" aria-describedby="field-country-error"' in refused.text
    assert 'value="Greenfield Catering Co"' in refused.text  # what was typed comes back
    garbled = await jane.client.post("/account/billing", data={**form, **DETAILS, "city": "Spring\x00field"})
    assert garbled.status_code == 400
    assert await get_billing_details(jane.tenant, jane.customer.id) is None
    assert await audit(jane) == []


async def test_where_the_merchant_does_not_allow_it_the_page_is_absent_and_refused(shopper: ShopperFactory) -> None:
    jane = await shopper(RESTRICTED)
    invoice = await jane.invoice(1000)
    assert "/account/billing" not in (await jane.client.get("/invoices")).text
    assert "/account/billing" not in (await jane.client.get(f"/invoices/{invoice.id}")).text
    assert (await jane.client.get("/account/billing")).status_code == 403
    csrf = (await jane.form("/invoices"))["csrf_token"]
    forged = await jane.client.post("/account/billing", data={"csrf_token": csrf, **DETAILS})
    assert forged.status_code == 403
    assert await get_billing_details(jane.tenant, jane.customer.id) is None
    assert await audit(jane) == []


async def test_the_update_needs_its_csrf_token(shopper: ShopperFactory) -> None:
    jane = await shopper()
    assert (await jane.client.post("/account/billing", data=DETAILS)).status_code == 403
    assert await get_billing_details(jane.tenant, jane.customer.id) is None
