"""Invoices in Chromium, as Jane at Greenfield: the Overview's figures, pay INV-1117, its PDF, history.

Runs at the phone (390 x 844) and the desktop viewport, each on a Greenfield merchant of its own
with the demo's billing history (``portal.billing.demo_data``: INV-1106 to INV-1117, the last one
open). axe-core must find no WCAG 2.2 A/AA violation on the list, detail, pay and history pages.
"""

from __future__ import annotations

import asyncio
import io
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect
from pypdf import PdfReader

from portal.billing import invoices
from portal.billing.demo_data import DEMO, _apply
from portal.billing.models import LineInput
from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import Actor
from portal.tenancy.models import Tenant
from portal.testing import apply_tenants, customer_id
from support.browser import LivePortal, Viewport, axe_check, fill_card, sign_in

JANE = "jane@globalco.com"
MERCHANT = Actor(type="merchant_api_key", id="key_e2e_invoices")


def tenant_file(slug: str) -> str:
    return f"""
[[isos]]
slug = "{slug}-iso"
name = "Harbor Payments (e2e)"

[[isos.merchants]]
slug = "{slug}"
name = "Greenfield Bakery"
timezone = "America/New_York"
locale = "en-US"
[isos.merchants.brand]
color = "#2e7d32"
support_email = "help@greenfield.test"
terms_url = "https://greenfield.test/terms"
[isos.merchants.gateway]
key = "sandbox"
[isos.merchants.plugins.cards]
[isos.merchants.plugins.subscriptions]
[isos.merchants.plugins.invoices]
settings = {{ allow_billing_details_update = true }}
[[isos.merchants.customers]]
email = "{JANE}"
name = "Jane Cooper"
"""


async def greenfield(live: LivePortal, slug: str, tmp_path: Path) -> Tenant:
    """Greenfield with the demo's billing: Jane's subscriptions, INV-1106 to INV-1117 (the last one open)."""
    await apply_tenants(live.platform, tenant_file(slug), tmp_path)
    tenant = await live.tenant(slug)
    await _apply(live.platform, tenant, replace(DEMO[0], slug=slug), datetime.now(UTC))
    return tenant


async def one_off(tenant: Tenant, jane: str, amount: int, description: str) -> str:
    """Another open invoice for Jane; its number."""
    now = datetime.now(UTC)
    async with tenant_transaction(tenant.merchant.iso_id):
        draft = await invoices.create(
            tenant, customer_id=jane, currency="USD", lines=[LineInput(description=description, unit_amount=amount)],
            due_at=now + timedelta(days=14), now=now, actor=MERCHANT,
        )  # fmt: skip
        invoice = await invoices.finalize(tenant, draft.id, now=now, actor=MERCHANT)
    assert invoice.number is not None
    return invoice.number


async def status_of(tenant: Tenant, number: str) -> dict[str, Any]:
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT status, amount_due FROM portal_billing_invoice WHERE merchant_id = $1 AND number = $2",
            tenant.merchant.id,
            number,
        )
    return dict(rows[0])


async def checked(page: Page, viewport: Viewport) -> None:
    await axe_check(page)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport.width, f"the page is {width} px wide at {viewport.name} ({viewport.width})"


async def open_invoice(page: Page, number: str) -> None:
    await page.get_by_role("navigation", name="Portal").get_by_role("link", name="Invoices").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Invoices")
    await page.get_by_role("link", name=number, exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {number}")


async def test_jane_pays_inv_1117_and_downloads_its_pdf(
    page: Page, viewport: Viewport, live_portal: LivePortal, tmp_path: Path
) -> None:
    slug = f"e2e-inv-{viewport.name}-{os.getpid():x}"
    tenant = await greenfield(live_portal, slug, tmp_path)
    jane = await customer_id(slug, JANE)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    await sign_in(page, live_portal, slug, JANE)
    await expect(page.get_by_role("region", name="Outstanding")).to_contain_text("$3,420")
    await expect(page.get_by_role("region", name="Paid YTD")).to_contain_text("$18,640")
    await expect(page.get_by_role("region", name="Invoices")).to_contain_text("12")
    await expect(page.get_by_role("region", name="Subscriptions")).to_contain_text("2 active")
    titles = await page.locator(".widget__title").all_text_contents()
    assert titles[:4] == ["Outstanding", "Paid YTD", "Invoices", "Subscriptions"], titles
    await checked(page, viewport)

    # The list: twelve invoices, INV-1117 open on top.
    await page.get_by_role("navigation", name="Portal").get_by_role("link", name="Invoices").click()
    rows = page.locator("table.inv-table tbody tr")
    await expect(rows).to_have_count(12)
    await expect(rows.first).to_contain_text("INV-1117")
    await expect(rows.first).to_contain_text("$3,420.00")
    await expect(rows.first).to_contain_text("Open")
    await checked(page, viewport)
    await page.get_by_role("link", name="Paid", exact=True).click()
    await expect(rows).to_have_count(11)
    await page.get_by_role("link", name="All", exact=True).click()

    # The invoice, then paying it with the Visa on file.
    await page.get_by_role("link", name="INV-1117", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Invoice INV-1117")
    await expect(page.get_by_text("Holiday catering, 120 guests")).to_be_visible()
    await checked(page, viewport)
    await page.get_by_role("link", name="Pay $3,420.00").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Pay INV-1117")
    await expect(page.get_by_role("radio", name="Visa ending in 1111 (default)")).to_be_checked()
    await checked(page, viewport)
    await page.get_by_role("button", name="Pay $3,420.00").click()
    await expect(page.get_by_role("status").filter(has_text="Thank you! INV-1117 is paid.")).to_be_visible()
    await expect(page.locator(".inv-head .badge")).to_have_text("Paid")
    assert (await status_of(tenant, "INV-1117"))["status"] == "paid"

    # Its PDF says so.
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download PDF of INV-1117").click()
    download = await download_info.value
    assert download.suggested_filename == "INV-1117.pdf"
    content = await asyncio.to_thread(Path(await download.path()).read_bytes)
    text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(content)).pages)
    for expected in ("INV-1117", "$3,420.00", "Paid", "Greenfield Bakery", "help@greenfield.test"):
        assert expected in text, expected

    # The payment history: the new payment on top, with its receipt.
    await page.goto(live_portal.url(slug, "/payments"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Payment history")
    history = page.locator("table.inv-table tbody tr")
    await expect(history.first).to_contain_text("INV-1117")
    await expect(history.first).to_contain_text("Visa ending in 1111")
    await checked(page, viewport)
    await history.first.get_by_role("link", name="Receipt").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")
    await checked(page, viewport)

    # A new card pays another invoice.
    number = await one_off(tenant, jane, 12500, "Birthday cake")
    await open_invoice(page, number)
    await page.get_by_role("link", name="Pay $125.00").click()
    await page.get_by_role("link", name="Use a new card").click()
    await expect(page.locator("#card-form-submit")).to_be_enabled()
    await checked(page, viewport)
    await fill_card(page, "5555 5555 5555 4444")
    await page.get_by_role("button", name="Pay $125.00").click()
    await expect(page.get_by_role("status").filter(has_text=f"Thank you! {number} is paid.")).to_be_visible()
    await expect(page.get_by_text("Mastercard ending in 4444")).to_be_visible()

    # A card that goes on file, then is declined: the invoice stays open and the page says why.
    declining = await one_off(tenant, jane, 4800, "Sourdough class")
    await open_invoice(page, declining)
    await page.get_by_role("link", name="Pay $48.00").click()
    await page.get_by_role("link", name="Use a new card").click()
    await expect(page.locator("#card-form-submit")).to_be_enabled()
    await fill_card(page, "4000 0000 0000 0341")
    await page.get_by_role("button", name="Pay $48.00").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Payment declined.")
    await expect(alert).to_contain_text("Do not honor")
    await expect(alert).to_contain_text("the invoice is still open")
    await expect(alert).to_be_focused()
    await checked(page, viewport)
    assert (await status_of(tenant, declining)) == {"status": "open", "amount_due": 4800}

    # Billing details: a wrong country is named and focused, then the details are saved.
    await page.goto(live_portal.url(slug, "/account/billing"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Billing details")
    await checked(page, viewport)
    await page.get_by_label("Name or company").fill("Greenfield Catering Co")
    await page.get_by_label("Address line 1").fill("12 Mill Street")
    await page.get_by_label("City").fill("Springfield")
    await page.get_by_label("Postal code").fill("62701")
    await page.get_by_label("Country code (such as US, GB, DE)").fill("XX")
    await page.get_by_role("button", name="Save billing details").click()
    await expect(page.get_by_role("alert")).to_contain_text("is not an ISO 3166-1 alpha-2 country code")
    await expect(page.get_by_role("alert")).to_be_focused()
    await checked(page, viewport)
    await page.get_by_label("Country code (such as US, GB, DE)").fill("US")
    await page.get_by_role("button", name="Save billing details").click()
    await expect(page.get_by_role("status").filter(has_text="your billing details were updated")).to_be_visible()
    await open_invoice(page, declining)
    await expect(page.get_by_role("region", name="Billed to")).to_contain_text("Greenfield Catering Co")
    await expect(page.get_by_role("region", name="Billed to")).to_contain_text("62701 Springfield")
    assert not problems, problems
