"""The merchant switch in Chromium: Jane at Greenfield switches to Pinnacle, on to Apex and back.

Each viewport (phone, desktop) gets its own two ISOs: Harbor's Greenfield, Pinnacle and Apex
with Jane at each, and Summit's Northwind with a Jane of its own, never listed. Each switch lands
on the target's host with a new session there, its branding and its data; both sides' webhooks
arrive signed. axe-core finds no WCAG 2.2 A/AA violation on the switch page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from portal.billing import invoices
from portal.billing.models import LineInput
from portal.db.engine import tenant_transaction
from portal.events.bus import Actor
from portal.testing import apply_tenants, customer_id
from support.browser import LivePortal, Viewport, WebhookReceiver, axe_check, sign_in

JANE = "jane@globalco.com"
MERCHANT = Actor(type="merchant_api_key", id="key_e2e_switch")
BRANDS = {"greenfield": ("Greenfield Bakery", "#2e7d32"), "pinnacle": ("Pinnacle SaaS Inc.", "#5b21b6"),
          "apex": ("Apex Auto Parts", "#c2410c")}  # fmt: skip


def tenant_file(run: str) -> str:
    text = f'[[isos]]\nslug = "sw-harbor-{run}"\nname = "Harbor Payments (e2e switch)"\n\n'
    for key, (name, color) in BRANDS.items():
        text += f'[[isos.merchants]]\nslug = "sw-{key}-{run}"\nname = "{name}"\n'
        text += f'[isos.merchants.brand]\ncolor = "{color}"\n'
        text += "[isos.merchants.plugins.subscriptions]\n[isos.merchants.plugins.invoices]\n"
        text += f'[isos.merchants.plugins.merchant_switch]\n[[isos.merchants.customers]]\nemail = "{JANE}"\n\n'
    text += f'[[isos]]\nslug = "sw-summit-{run}"\nname = "Summit (e2e switch)"\n\n'
    text += f'[[isos.merchants]]\nslug = "sw-northwind-{run}"\nname = "Northwind Outfitters"\n'
    text += f'[isos.merchants.plugins.merchant_switch]\n[[isos.merchants.customers]]\nemail = "{JANE}"\n'
    return text


async def open_invoice(live: LivePortal, slug: str) -> None:
    tenant = await live.tenant(slug)
    jane = await customer_id(slug, JANE)
    at = datetime.now(UTC) - timedelta(days=1)
    async with tenant_transaction(tenant.merchant.iso_id):
        draft = await invoices.create(
            tenant, customer_id=jane, currency="USD", lines=[LineInput(description="Seats", unit_amount=12000)],
            due_at=at + timedelta(days=20), now=at, actor=MERCHANT,
        )  # fmt: skip
        await invoices.finalize(tenant, draft.id, now=at, actor=MERCHANT)


async def switch_to(page: Page, live: LivePortal, slug: str, name: str, color: str) -> None:
    await page.get_by_role("button", name=f"Switch to {name}").click()
    await expect(page).to_have_url(re.compile(rf"^http://{re.escape(slug)}\.portal\.localhost:\d+/$"))
    await expect(page.locator(".site-header__brand")).to_have_text(name)
    assert await page.locator('meta[name="theme-color"]').get_attribute("content") == color


async def test_jane_switches_between_her_merchants(
    page: Page, viewport: Viewport, live_portal: LivePortal, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    run = f"{viewport.name}-{tmp_path.name[-6:]}".lower().replace("_", "-")
    await apply_tenants(live_portal.platform, tenant_file(run), tmp_path)
    slug = {key: f"sw-{key}-{run}" for key in (*BRANDS, "northwind")}
    await open_invoice(live_portal, slug["pinnacle"])
    await webhook_receiver.register(slug["greenfield"], ["customer.switched_out", "customer.switched_in"])
    await webhook_receiver.register(slug["pinnacle"], ["customer.switched_out", "customer.switched_in"])

    await sign_in(page, live_portal, slug["greenfield"], JANE)
    line = page.get_by_role("link", name="You have accounts at 2 other merchants")
    await expect(line).to_be_visible()
    await line.click()
    await expect(page.get_by_role("heading", name=re.compile(f"Switch merchant — {JANE}"))).to_be_visible()
    await expect(page.get_by_text("Current · You are here")).to_be_visible()
    await expect(page.get_by_text("Active · 1 invoice due")).to_be_visible()
    await expect(page.get_by_text("Northwind Outfitters")).to_have_count(0)
    await axe_check(page)

    await switch_to(page, live_portal, slug["pinnacle"], *BRANDS["pinnacle"])
    await page.goto(live_portal.url(slug["pinnacle"], "/invoices"))
    await expect(page.get_by_text("$120.00").first).to_be_visible()  # Pinnacle's data
    out = await webhook_receiver.wait_for_event("customer.switched_out")
    arrived = await webhook_receiver.wait_for_event("customer.switched_in")
    assert out["data"]["object"]["id"] == arrived["data"]["object"]["id"]
    assert out["data"]["object"]["to_merchant_name"] == BRANDS["pinnacle"][0]
    assert arrived["data"]["object"]["from_merchant_name"] == BRANDS["greenfield"][0]

    await page.get_by_role("link", name="You have accounts at 2 other merchants").click()
    await expect(page.get_by_text("Northwind Outfitters")).to_have_count(0)
    await switch_to(page, live_portal, slug["apex"], *BRANDS["apex"])
    await page.get_by_role("link", name="You have accounts at 2 other merchants").click()
    await switch_to(page, live_portal, slug["greenfield"], *BRANDS["greenfield"])
    await expect(page.get_by_role("link", name="You have accounts at 2 other merchants")).to_be_visible()

    await sign_in(page, live_portal, slug["northwind"], JANE)  # Summit's Jane: nobody to switch to
    await expect(page.get_by_text("You have accounts at")).to_have_count(0)
