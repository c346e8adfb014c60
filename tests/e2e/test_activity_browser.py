"""The Overview's *Recent activity* in Chromium at phone and desktop size: lines in words, axe-core clean.

Each viewport gets a merchant of its own; the events are made through the ledger (a subscription
and a one-off invoice) and core's billing details, then Jane opens the portal with a signed link.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from portal.billing import catalog, invoices, subscriptions
from portal.billing.models import LineInput
from portal.customers.billing import BillingDetails, update_billing_details
from portal.db.engine import tenant_transaction
from portal.events.bus import Actor
from portal.testing import apply_tenants, customer_id
from support.browser import LivePortal, Viewport, axe_check, sign_in

JANE = "jane@globalco.com"
MERCHANT = Actor(type="merchant_api_key", id="key_e2e_activity")


def tenant_file(slug: str) -> str:
    return f"""
[[isos]]
slug = "{slug}-iso"
name = "Harbor Payments (e2e)"

[[isos.merchants]]
slug = "{slug}"
name = "Greenfield Bakery"
timezone = "America/New_York"
[isos.merchants.brand]
color = "#2e7d32"
[isos.merchants.gateway]
key = "sandbox"
[isos.merchants.plugins.cards]
[[isos.merchants.customers]]
email = "{JANE}"
name = "Jane Cooper"
"""


async def history(live: LivePortal, slug: str, tmp_path: Path) -> None:
    """A Bread Box subscription, INV issued for $3,420, and billing details, for Jane."""
    await apply_tenants(live.platform, tenant_file(slug), tmp_path)
    tenant = await live.tenant(slug)
    jane = await customer_id(slug, JANE)
    now = datetime.now(UTC)
    async with tenant_transaction(tenant.merchant.iso_id):
        product = await catalog.create_product(tenant, name="Monthly Bread Box", actor=MERCHANT)
        price = await catalog.create_price(
            tenant, product_id=product.id, currency="USD", unit_amount=3900, interval="month", actor=MERCHANT
        )
        await subscriptions.create(tenant, customer_id=jane, price_id=price.id, now=now, actor=MERCHANT)
        line = LineInput(description="Holiday catering", quantity=1, unit_amount=342000)
        draft = await invoices.create(
            tenant, customer_id=jane, currency="USD", lines=[line], due_at=now + timedelta(days=21), now=now,
            actor=MERCHANT,
        )  # fmt: skip
        await invoices.finalize(tenant, draft.id, now=now, actor=MERCHANT)
        details = BillingDetails(name="Globalco", line1="1 Main St", city="Albany", postal_code="12207", country="US")
        await update_billing_details(tenant, jane, details, actor=MERCHANT, registry=live.platform.registry)


async def test_janes_recent_activity(page: Page, viewport: Viewport, live_portal: LivePortal, tmp_path: Path) -> None:
    slug = f"e2e-activity-{viewport.name}-{os.getpid():x}"
    await history(live_portal, slug, tmp_path)
    await sign_in(page, live_portal, slug, JANE)
    feed = page.get_by_role("region", name="Recent activity")
    await expect(feed).to_be_visible()
    items = feed.get_by_role("listitem")
    await expect(items).to_have_count(3)
    await expect(items.nth(0)).to_contain_text("Billing details updated")
    await expect(items.nth(1)).to_contain_text("Invoice INV-")
    await expect(items.nth(1)).to_contain_text("issued $3,420 · Due")
    await expect(items.nth(2)).to_contain_text("Subscription Monthly Bread Box started $39")
    await axe_check(page)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport.width
