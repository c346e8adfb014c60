"""axe-core (WCAG 2.2 AA) on the customer pages, in Chromium at phone and desktop size."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from support.browser import AxeViolationsError, LivePortal, Viewport, axe_check, expired_link, sign_in

GREENFIELD = "t-greenfield"
JANE = "jane@globalco.com"


async def assert_reflows(page: Page, viewport: Viewport) -> None:
    """Nothing scrolls sideways (WCAG 1.4.10, which axe does not check)."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport.width, f"the page is {width} px wide at the {viewport.name} viewport ({viewport.width})"


async def test_login_page(page: Page, viewport: Viewport, live_portal: LivePortal) -> None:
    response = await page.goto(live_portal.url(GREENFIELD, "/login"))
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Greenfield Bakery")
    await expect(page.get_by_label("Email address")).to_be_visible()
    await axe_check(page)
    await assert_reflows(page, viewport)


async def test_login_page_with_an_error(page: Page, viewport: Viewport, live_portal: LivePortal) -> None:
    await page.goto(live_portal.url(GREENFIELD, "/login"))
    await page.get_by_label("Email address").fill("not an address")
    await page.get_by_role("button", name="Email me a sign-in link").click()
    email = page.get_by_label("Email address")
    await expect(email).to_have_attribute("aria-invalid", "true")
    await expect(email).to_have_accessible_description(
        "Enter the email address you use with us, like name@example.com."
    )
    await axe_check(page)
    await assert_reflows(page, viewport)


async def test_link_problem_page(page: Page, viewport: Viewport, live_portal: LivePortal) -> None:
    response = await page.goto(await expired_link(live_portal, GREENFIELD, JANE))
    assert response is not None and response.status == 410
    await expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
    await expect(page.get_by_role("button", name="Email me a new link")).to_be_visible()
    await axe_check(page)
    await assert_reflows(page, viewport)


async def test_overview_signed_in(page: Page, viewport: Viewport, live_portal: LivePortal) -> None:
    link = await sign_in(page, live_portal, GREENFIELD, JANE)
    assert link.url == f"http://portal.greenfield.test:{live_portal.port}/access/{link.token}"  # its custom domain
    assert page.url == live_portal.url(GREENFIELD, "/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    await expect(page.get_by_text(f"Signed in as {JANE}")).to_be_visible()
    await axe_check(page)
    await assert_reflows(page, viewport)


async def test_signed_out_page(page: Page, viewport: Viewport, live_portal: LivePortal) -> None:
    await sign_in(page, live_portal, GREENFIELD, JANE)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("You are signed out")
    assert page.url == live_portal.url(GREENFIELD, "/signed-out")
    await expect(page.get_by_role("link", name="Sign in again")).to_have_attribute("href", "/login")
    await axe_check(page)
    await assert_reflows(page, viewport)


async def test_not_found_page(page: Page, viewport: Viewport, live_portal: LivePortal) -> None:
    response = await page.goto(live_portal.url(GREENFIELD, "/no-such-page"))
    assert response is not None and response.status == 404
    await expect(page.get_by_text("Error 404")).to_be_visible()
    await axe_check(page)
    await assert_reflows(page, viewport)


async def test_not_found_page_of_an_unknown_host(page: Page, viewport: Viewport, live_portal: LivePortal) -> None:
    response = await page.goto(live_portal.url("no-such-merchant"))
    assert response is not None and response.status == 404
    await expect(page.get_by_text("There is no portal at this address.")).to_be_visible()
    await axe_check(page)
    await assert_reflows(page, viewport)


async def test_axe_check_reports_violations_in_the_page_and_its_iframes(
    page_at: Callable[[str], Awaitable[Page]], live_portal: LivePortal
) -> None:
    page = await page_at("desktop")
    await page.goto(live_portal.url(GREENFIELD, "/login"))
    await page.evaluate(
        """() => {
            document.querySelector("label[for=email]").remove();
            const frame = document.createElement("iframe");
            frame.title = "Card fields";
            document.querySelector("main").append(frame);
            frame.contentDocument.body.innerHTML = '<button id="pay"></button>';
        }"""
    )
    with pytest.raises(AxeViolationsError) as failed:
        await axe_check(page)
    report = str(failed.value)
    assert report.startswith("axe-core 4.") and "found 2 violation(s)" in report
    assert "- label [critical]: Form elements must have labels" in report and "    #email: " in report
    assert "- button-name [critical]" in report and "    iframe >>> #pay: " in report  # frame, then element
