"""A pale brand colour (#f5f5a0) in Chromium: every customer page reads, in light and dark mode.

Each run (phone 390 x 844 and desktop, light and dark colour scheme) gets a Harbor ISO of its own
with a pale-yellow merchant carrying the demo's billing (a card on file, subscriptions, invoices)
and a sibling merchant, so the switch page has an account to list. Every page a signed-in
customer can open (Overview, cards list and add-a-card with its hosted fields, subscriptions,
invoices list and detail, payment history, switch page) and the sign-in page must pass axe-core
(WCAG 2.2 AA, colour contrast included) with the brand colours really in use: the current
navigation item is drawn on the brand surface, links in the brand's text colour for the scheme.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from portal.billing.demo_data import DEMO, _apply
from portal.tenancy.colours import palette
from portal.testing import apply_tenants
from support.browser import LivePortal, Viewport, axe_check, sign_in

JANE = "jane@globalco.com"
PALE = "#f5f5a0"


def rgb(hex_color: str) -> str:
    return "rgb({}, {}, {})".format(*(int(hex_color[i : i + 2], 16) for i in (1, 3, 5)))


def tenant_file(run: str) -> str:
    return f"""
[[isos]]
slug = "pale-iso-{run}"
name = "Harbor Payments (e2e brand contrast)"

[[isos.merchants]]
slug = "pale-{run}"
name = "Lemon Grove Bakery"
timezone = "America/New_York"
locale = "en-US"
[isos.merchants.brand]
color = "{PALE}"
support_email = "help@lemongrove.test"
terms_url = "https://lemongrove.test/terms"
privacy_url = "https://lemongrove.test/privacy"
[isos.merchants.gateway]
key = "sandbox"
[isos.merchants.plugins.cards]
[isos.merchants.plugins.subscriptions]
[isos.merchants.plugins.invoices]
[isos.merchants.plugins.merchant_switch]
[[isos.merchants.customers]]
email = "{JANE}"
name = "Jane Cooper"

[[isos.merchants]]
slug = "pale-sibling-{run}"
name = "Lemon Grove Catering"
[isos.merchants.brand]
color = "{PALE}"
accent = "#e91e63"
[isos.merchants.plugins.invoices]
[isos.merchants.plugins.merchant_switch]
[[isos.merchants.customers]]
email = "{JANE}"
"""


async def assert_brand_in_use(page: Page, scheme: str) -> None:
    """The current navigation item is a brand surface; links are in the brand's text colour."""
    colours = palette(PALE)
    current = page.get_by_role("navigation", name="Portal").locator("[aria-current='page']")
    await expect(current).to_have_css("background-color", rgb(colours.surface))
    await expect(current).to_have_css("color", rgb(colours.on_surface))
    wanted = colours.text if scheme == "light" else colours.text_dark
    probe = await page.evaluate(
        """() => { const a = document.createElement("a"); a.href = "#"; document.querySelector("main").append(a);
                   const colour = getComputedStyle(a).color; a.remove(); return colour; }"""
    )
    assert probe == rgb(wanted), (probe, wanted)


async def visit(page: Page, url: str, heading: str, scheme: str, viewport: Viewport) -> None:
    response = await page.goto(url)
    assert response is not None and response.ok, f"{url} answered {response and response.status}"
    await expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
    await assert_brand_in_use(page, scheme)
    await checked(page, viewport)


async def checked(page: Page, viewport: Viewport) -> None:
    await axe_check(page)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport.width, f"the page is {width} px wide at {viewport.name} ({viewport.width})"


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_a_pale_brand_reads_on_every_page(
    browser: Browser, viewport: Viewport, scheme: str, live_portal: LivePortal, tmp_path: Path
) -> None:
    run = f"{viewport.name}-{scheme}-{tmp_path.name[-6:]}".lower().replace("_", "-")
    slug = f"pale-{run}"
    await apply_tenants(live_portal.platform, tenant_file(run), tmp_path)
    tenant = await live_portal.tenant(slug)
    await _apply(live_portal.platform, tenant, replace(DEMO[0], slug=slug), datetime.now(UTC))
    context = await browser.new_context(
        **viewport.context_options(), locale="en-US", color_scheme=scheme, service_workers="block"
    )
    try:
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        assert await page.evaluate(f"matchMedia('(prefers-color-scheme: {scheme})').matches")

        # Signed out: the sign-in page.
        response = await page.goto(live_portal.url(slug, "/login"))
        assert response is not None and response.status == 200
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Lemon Grove Bakery")
        button = page.get_by_role("button", name="Email me a sign-in link")
        await expect(button).to_have_css("background-color", rgb(PALE))
        await expect(button).to_have_css("color", rgb("#111111"))
        await checked(page, viewport)

        await sign_in(page, live_portal, slug, JANE)
        await expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
        await assert_brand_in_use(page, scheme)
        await checked(page, viewport)

        await visit(page, live_portal.url(slug, "/payment-methods"), "Payment methods", scheme, viewport)
        await visit(page, live_portal.url(slug, "/payment-methods/new"), "Add a card", scheme, viewport)
        frame = page.frame_locator("#card-number iframe")
        await expect(frame.get_by_role("textbox", name="Card number")).to_be_visible()
        field = frame.get_by_role("textbox", name="Card number")
        await field.focus()
        colours = palette(PALE)
        ring = colours.text if scheme == "light" else colours.text_dark
        await expect(field).to_have_css("outline-color", rgb(ring))
        surface = "#ffffff" if scheme == "light" else "#1c212b"
        await expect(field).to_have_css("background-color", rgb(surface))
        await checked(page, viewport)

        await visit(page, live_portal.url(slug, "/subscriptions"), "Subscriptions", scheme, viewport)
        await visit(page, live_portal.url(slug, "/invoices"), "Invoices", scheme, viewport)
        await page.get_by_role("link", name="INV-1117", exact=True).click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Invoice INV-1117")
        await assert_brand_in_use(page, scheme)
        await checked(page, viewport)
        await visit(page, live_portal.url(slug, "/payments"), "Payment history", scheme, viewport)

        response = await page.goto(live_portal.url(slug, "/switch"))
        assert response is not None and response.ok
        await expect(page.get_by_text("Lemon Grove Catering")).to_be_visible()
        await checked(page, viewport)
        assert problems == []
    finally:
        await context.close()
