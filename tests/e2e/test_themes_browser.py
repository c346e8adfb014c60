"""The shipped themes in Chromium: the demo's Greenfield Bakery in ``harbor``, Northwind in ``summit``.

``portal demo`` runs as a process of its own, so the installed themes and plugins, the demo tenant
file (``tenants/demo.toml``: the ISOs' themes, the merchants' logos) and the demo's billing are
what a visitor of the demo gets. For each theme, one browser context per colour scheme (light,
dark) and width (phone 390 x 844, desktop 1280 x 800) walks every customer page: the sign-in page
and an error page while signed out, then the Overview, cards (list, add, remove), subscriptions
(list, detail, pause, cancel), invoices (list, detail, pay, payment history) and the switch page.
On each page axe-core must find no WCAG 2.2 A/AA violation, the theme's stylesheet is linked,
nothing scrolls sideways and the page background is the theme's for the scheme. The Overview
shows the theme's own layout (harbor's sidebar beside the content on desktop and below the header
on phones, summit's navigation in the top bar over its hero band) and the merchant's logo.

Screenshots of the Overview and the cards page (each scheme and width) and of the invoice PDF
(rendered to PNG with pypdfium2) go to ``$PORTAL_SCREENSHOT_DIR`` when set, else to a folder
under the test's ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pypdfium2
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from support.browser import VIEWPORTS, AxeViolationsError, Viewport, axe_check

ROOT = Path(__file__).parents[2]
LINK = re.compile(r"http://(?P<slug>[a-z0-9-]+)\.portal\.localhost:\d+(?P<path>/access/pt1\.[A-Za-z0-9_.-]+)")
SESSION_COOKIE = "__Host-portal_session"


@dataclass(frozen=True)
class Shipped:
    """A theme and the demo merchant that uses it."""

    theme: str
    slug: str
    merchant: str
    light_bg: str
    dark_bg: str


THEMES = {
    "harbor": Shipped("harbor", "greenfield", "Greenfield Bakery", "rgb(238, 242, 247)", "rgb(13, 20, 36)"),
    "summit": Shipped("summit", "northwind", "Northwind Outfitters", "rgb(247, 244, 238)", "rgb(22, 19, 15)"),
}


@dataclass(frozen=True)
class Demo:
    port: int
    links: dict[str, str]
    """The first sign-in link the demo printed for each merchant (Jane's), as a path."""

    def url(self, slug: str, path: str = "/") -> str:
        return f"http://{slug}.portal.localhost:{self.port}{path}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    """``portal demo`` on a free port with a fresh data folder, until the module's tests are done.

    The folder is not under pytest's base temporary folder: the embedded PostgreSQL runs as a user
    of its own, which must reach it, and every pytest session (another one may start meanwhile)
    makes that base folder private again.
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    data_dir = Path(tempfile.mkdtemp(prefix="portal-themes-demo-"))
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "demo", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                pytest.fail("the demo exited early:\n" + "".join(output))
            output.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        else:
            pytest.fail("the demo did not start within 90 s:\n" + "".join(output))
        links: dict[str, str] = {}
        for match in LINK.finditer("".join(output)):
            links.setdefault(match.group("slug"), match.group("path"))
        yield Demo(port, links)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def _session(demo: Demo, slug: str) -> str:
    """Open the merchant's printed link (single use) and keep the session cookie's value."""
    response = httpx.get(
        f"http://127.0.0.1:{demo.port}{demo.links[slug]}",
        headers={"Host": f"{slug}.portal.localhost:{demo.port}"},
        follow_redirects=False,
        timeout=15,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    return str(response.cookies[SESSION_COOKIE])


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PORTAL_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _open(page: Page, url: str, status: int = 200) -> None:
    response = await page.goto(url)
    assert response is not None and response.status == status, f"{url}: {response and response.status}"


async def _check(page: Page, shipped: Shipped, viewport: Viewport, scheme: str) -> None:
    """The theme's stylesheet and background for the scheme, no sideways scrolling, and axe-core."""
    stylesheet = f'link[rel="stylesheet"][href="/static/themes/{shipped.theme}/{shipped.theme}.css"]'
    await expect(page.locator(stylesheet)).to_have_count(1)
    await expect(page.locator("body")).to_have_css(
        "background-color", shipped.light_bg if scheme == "light" else shipped.dark_bg
    )
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport.width, f"{page.url} is {width} px wide at {viewport.width}"
    try:
        await axe_check(page)
    except AxeViolationsError as failed:
        raise AssertionError(f"{page.url} ({shipped.theme}, {scheme}, {viewport.name}): {failed}") from None


async def _assert_layout(page: Page, shipped: Shipped, viewport: Viewport) -> None:
    """The theme's own landmarks on the Overview, placed as its layout puts them; the logo in the header."""
    logo = page.get_by_role("banner").get_by_role("img", name=shipped.merchant, exact=True)
    await expect(logo).to_have_attribute("src", f"/static/themes/{shipped.theme}/logos/{shipped.slug}.svg")
    assert await logo.evaluate("img => img.complete && img.naturalWidth > 0"), "the logo did not load"
    nav = page.get_by_role("navigation", name="Account sections")
    await expect(nav.locator("[aria-current='page']")).to_have_text("Overview")
    nav_box, main_box = await nav.bounding_box(), await page.locator("main").bounding_box()
    assert nav_box is not None and main_box is not None
    if shipped.theme == "harbor":
        await expect(page.locator("body > nav.hb-nav")).to_be_visible()
        if viewport.name == "desktop":  # a sidebar: the header and the navigation at the left, beside the content
            header_box = await page.get_by_role("banner").bounding_box()
            assert header_box is not None and header_box["x"] == nav_box["x"] == 0
            assert header_box["x"] + header_box["width"] <= main_box["x"]
            assert nav_box["x"] + nav_box["width"] <= main_box["x"]
            assert nav_box["y"] < main_box["y"] + main_box["height"]
        else:  # below the header, above the content, full width
            assert nav_box["y"] + nav_box["height"] <= main_box["y"] and nav_box["width"] >= viewport.width - 1
    else:
        await expect(page.get_by_role("banner").get_by_role("navigation", name="Account sections")).to_be_visible()
        hero = page.locator(".sm-hero")
        await expect(hero).to_contain_text(shipped.merchant)
        hero_box = await hero.bounding_box()
        assert hero_box is not None and hero_box["width"] >= viewport.width - 1  # wide: edge to edge
        assert nav_box["y"] < hero_box["y"] < main_box["y"]


async def _href(page: Page, selector: str) -> str:
    href = await page.locator(selector).first.get_attribute("href")
    assert href, f"no {selector} on {page.url}"
    return href


async def _walk(
    context: BrowserContext, demo: Demo, shipped: Shipped, viewport: Viewport, scheme: str, session: str, shots: Path
) -> None:
    page = await context.new_page()
    slug = shipped.slug
    name = f"{shipped.theme}-{scheme}-{viewport.name}"

    await _open(page, demo.url(slug, "/login"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Sign in to {shipped.merchant}")
    await _check(page, shipped, viewport, scheme)
    await _open(page, demo.url(slug, "/no-such-page"), 404)
    await expect(page.get_by_text("Error 404")).to_be_visible()
    await _check(page, shipped, viewport, scheme)

    host = f"{slug}.portal.localhost"  # a host-only cookie (no leading dot), as __Host- cookies must be
    await context.add_cookies(
        [{"name": SESSION_COOKIE, "value": session, "domain": host, "path": "/", "secure": True, "httpOnly": True}]
    )
    await _open(page, demo.url(slug, "/"))
    await _assert_layout(page, shipped, viewport)
    await _check(page, shipped, viewport, scheme)
    await page.screenshot(path=shots / f"{name}-overview.png", full_page=True)

    await _open(page, demo.url(slug, "/payment-methods"))
    await _check(page, shipped, viewport, scheme)
    await page.screenshot(path=shots / f"{name}-cards.png", full_page=True)
    remove = await _href(page, "main a[href$='/remove']")
    await _open(page, demo.url(slug, "/payment-methods/new"))
    await expect(page.frame_locator("#card-number iframe").locator("input").first).to_be_visible()
    await _check(page, shipped, viewport, scheme)
    await _open(page, demo.url(slug, remove))
    await _check(page, shipped, viewport, scheme)

    await _open(page, demo.url(slug, "/subscriptions"))
    await _check(page, shipped, viewport, scheme)
    subscription = await _href(page, "main a[href^='/subscriptions/sub_']")
    for path in (subscription, f"{subscription}/pause", f"{subscription}/cancel"):
        await _open(page, demo.url(slug, path))
        await _check(page, shipped, viewport, scheme)

    await _open(page, demo.url(slug, "/invoices"))
    await _check(page, shipped, viewport, scheme)
    pay = await _href(page, "main a[href$='/pay']")
    for path in (pay.removesuffix("/pay"), pay, "/payments", "/switch"):
        await _open(page, demo.url(slug, path))
        await _check(page, shipped, viewport, scheme)
    await page.close()


async def _assert_email_and_spanish(demo: Demo, shipped: Shipped, session: str) -> None:
    """The sign-in email in the theme's shell with the logo's full address; the theme's wording in Spanish."""
    host = f"{shipped.slug}.portal.localhost:{demo.port}"
    base = f"http://127.0.0.1:{demo.port}"
    async with httpx.AsyncClient(base_url=base, headers={"host": host}, timeout=15) as client:
        form = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        csrf_cookie = form.headers["set-cookie"].split(";", 1)[0]  # Secure: httpx keeps it to itself over http
        sent = await client.post(
            "/login", headers={"cookie": csrf_cookie}, data={"csrf_token": token.group(1), "email": "jane@globalco.com"}
        )
        assert sent.status_code == 200
        body = ""
        for _ in range(100):
            inbox = await client.get("/-/mail")
            number = re.search(rf'href="(/-/mail/\d+)"[^>]*>[^<]*{re.escape(shipped.merchant)}', inbox.text)
            if number:
                body = html.unescape((await client.get(number.group(1))).text)
                break
            await asyncio.sleep(0.1)
        assert body, "no sign-in email arrived"
        logo = f"http://{host}/static/themes/{shipped.theme}/logos/{shipped.slug}.svg"
        assert f'<img src="{logo}" alt="{shipped.merchant}"' in body
        assert f"Your account with {shipped.merchant}" in body  # the theme's own shell

        spanish = await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={session}; portal_language=es"})
    assert spanish.status_code == 200
    assert 'aria-label="Secciones de la cuenta"' in spanish.text and "Cerrar sesión" in spanish.text


@pytest.mark.parametrize("theme", sorted(THEMES))
async def test_a_shipped_theme_on_every_page_in_both_schemes_and_widths(
    browser: Browser, demo: Demo, tmp_path: Path, theme: str
) -> None:
    shipped = THEMES[theme]
    shots = screenshot_dir(tmp_path)
    for stale in shots.glob(f"{theme}-*.png"):  # a reused $PORTAL_SCREENSHOT_DIR: only this run's count
        stale.unlink()
    session = _session(demo, shipped.slug)
    for scheme in ("light", "dark"):
        for viewport in VIEWPORTS.values():
            context = await browser.new_context(
                **viewport.context_options(), locale="en-US", color_scheme=scheme, service_workers="block"
            )
            try:
                await _walk(context, demo, shipped, viewport, scheme, session, shots)
            finally:
                await context.close()

    # The invoice PDF (the theme's pdf.css over the plugin's), the first page as an image.
    cookies = {SESSION_COOKIE: session}
    base = f"http://127.0.0.1:{demo.port}"
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=30) as client:
        client.headers["host"] = f"{shipped.slug}.portal.localhost:{demo.port}"
        listed = await client.get("/invoices")
        invoice = re.search(r'href="(/invoices/inv_[a-z0-9]+)/pay"', listed.text)
        assert invoice is not None, listed.text
        response = await client.get(f"{invoice.group(1)}.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = pypdfium2.PdfDocument(response.content)
    try:
        first = pdf[0]
        assert shipped.merchant in first.get_textpage().get_text_range()
        image = first.render(scale=2).to_pil()
        assert image.width < image.height  # A4, portrait
        image.save(shots / f"{theme}-invoice-pdf.png")
    finally:
        pdf.close()
    await _assert_email_and_spanish(demo, shipped, session)
    for kind in ("overview", "cards"):
        for scheme in ("light", "dark"):
            for viewport in VIEWPORTS.values():
                assert (shots / f"{theme}-{scheme}-{viewport.name}-{kind}.png").stat().st_size > 10_000
