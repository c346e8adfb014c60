"""Real-browser testing: the portal served by uvicorn, Debian's Chromium driven by Playwright, axe-core.

Chromium resolves ``*.localhost`` to loopback and treats it as a secure context, so merchant
portals answer at ``http://<slug>.portal.localhost:<port>`` and the ``__Host-`` cookies (which
need ``Secure``) work over plain HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import axe_playwright_python
import httpx
import msgspec
import pytest
import uvicorn
from litestar import Litestar
from playwright.async_api import Browser, BrowserContext, Page, Playwright

from portal.access.keys import signing_key
from portal.access.links import IssuedLink, issue_link
from portal.access.tokens import Claims, sign
from portal.api.keys import create_api_key
from portal.config import Settings
from portal.db.engine import tenant_transaction
from portal.platform import Platform
from portal.tenancy.models import Tenant
from portal.testing import customer_id
from portal.web.app import create_app
from support.receiver import Receiver

CHROMIUM_ENV = "PORTAL_TEST_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these Chromium keeps calling home on a closed network
    "--disable-component-update",
    "--disable-sync",
)
AXE_SCRIPT_PATH = Path(axe_playwright_python.__file__).parent / "axe.min.js"
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")


# --- Chromium and viewports -----------------------------------------------------------------


def chromium_path() -> str:
    """The Chromium to drive: ``$PORTAL_TEST_CHROMIUM`` or Debian's; fails the test when it is missing."""
    path = os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"The browser tests need Chromium at {path}, which is missing. Install Debian's with "
            f"`apt-get install -y chromium` (or point {CHROMIUM_ENV} at a Chromium binary).",
            pytrace=False,
        )
    return path


async def launch_chromium(playwright: Playwright) -> Browser:
    """Start the system Chromium headless (never a downloaded one)."""
    return await playwright.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))


@dataclass(frozen=True)
class Viewport:
    """A device a browser context emulates."""

    name: str
    width: int
    height: int
    is_mobile: bool = False
    has_touch: bool = False
    device_scale_factor: float = 1

    def context_options(self) -> dict[str, Any]:
        return {
            "viewport": {"width": self.width, "height": self.height},
            "is_mobile": self.is_mobile,
            "has_touch": self.has_touch,
            "device_scale_factor": self.device_scale_factor,
        }


PHONE = Viewport("phone", 390, 844, is_mobile=True, has_touch=True, device_scale_factor=3)
DESKTOP = Viewport("desktop", 1280, 800)
VIEWPORTS: dict[str, Viewport] = {v.name: v for v in (PHONE, DESKTOP)}


async def new_page(browser: Browser, viewport: Viewport | str) -> tuple[BrowserContext, Page]:
    """A page in a fresh context (no cookies, no storage) emulating ``viewport``."""
    chosen = VIEWPORTS[viewport] if isinstance(viewport, str) else viewport
    context = await browser.new_context(**chosen.context_options(), locale="en-US", service_workers="block")
    return context, await context.new_page()


# --- the live portal ------------------------------------------------------------------------


class PlatformView:
    """The started session platform, seen with other settings by the code it is handed to.

    Everything but ``settings`` is the platform's own (database, tenants, themes, registry, broker).
    """

    def __init__(self, platform: Platform, settings: Settings) -> None:
        self.platform = platform
        self.settings = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self.platform, name)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl+C keeps stopping pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LivePortal:
    """The portal served over HTTP on a loopback port, in this process's event loop."""

    def __init__(self, platform: Platform, sock: socket.socket, *, webhook_allow_private: bool = True) -> None:
        self.port = int(sock.getsockname()[1])
        self.settings = msgspec.structs.replace(
            platform.settings,
            public_scheme="http",
            public_port=self.port,
            webhook_allow_private=webhook_allow_private,  # receivers listen on loopback
            webhook_timeout=5.0,
        )
        self.platform = cast(Platform, PlatformView(platform, self.settings))
        self.app: Litestar = create_app(self.platform, manage_platform=False)
        self._socket = sock
        self._server = _Server(
            uvicorn.Config(
                self.app,
                lifespan="on",
                log_config=None,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=5,
            )
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def base_domain(self) -> str:
        return self.settings.base_domain

    def host(self, slug: str) -> str:
        """``<slug>.portal.localhost:<port>``, a merchant's Host."""
        return f"{slug}.{self.base_domain}:{self.port}"

    def url(self, slug: str, path: str = "/") -> str:
        """An absolute URL on a merchant's portal."""
        return f"http://{self.host(slug)}{path}"

    def client(self, host: str) -> httpx.AsyncClient:
        """An HTTP client to the live server with ``host`` (``<name>`` or ``<name>:<port>``) as its Host."""
        if ":" not in host:
            host = f"{host}:{self.port}"
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.port}", headers={"host": host}, trust_env=False, timeout=10
        )

    def api(self, key: str) -> httpx.AsyncClient:
        """A client of ``api.<base domain>`` authenticated with an API key."""
        client = self.client(f"api.{self.base_domain}")
        client.headers["authorization"] = f"Bearer {key}"
        return client

    async def tenant(self, slug: str) -> Tenant:
        tenant = await self.platform.tenants.resolve(f"{slug}.{self.base_domain}")
        assert tenant is not None, f"no merchant {slug!r}"
        return tenant

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="live-portal")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the live portal stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)
        self._socket.close()


def listening_socket() -> socket.socket:
    """A socket bound to a free loopback port (handed to uvicorn, so no other process can take it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serving(platform: Platform, *, webhook_allow_private: bool = True) -> AsyncIterator[LivePortal]:
    """Serve the platform until the block ends (loopback webhook receivers allowed unless told)."""
    live = LivePortal(platform, listening_socket(), webhook_allow_private=webhook_allow_private)
    await live.start()
    try:
        yield live
    finally:
        await live.stop()


# --- signing in -----------------------------------------------------------------------------


async def portal_link(live: LivePortal, slug: str, email: str, **options: Any) -> IssuedLink:
    """Mint a signed link (as the API does) for a merchant's customer; it points at the live server."""
    tenant = await live.tenant(slug)
    customer = await customer_id(slug, email)
    async with tenant_transaction(tenant.merchant.iso_id):
        return await issue_link(live.settings, tenant, customer, **options)


async def expired_link(live: LivePortal, slug: str, email: str) -> str:
    """A genuine link (signed with the merchant's key, as merchants sign offline) that expired a minute ago."""
    tenant = await live.tenant(slug)
    customer = await customer_id(slug, email)
    now = int(datetime.now(UTC).timestamp())
    claims = Claims(
        iso=tenant.merchant.iso_id,
        merchant=tenant.merchant.id,
        customer=customer,
        purpose="portal",
        flow=None,
        exp=now - 60,
        iat=now - 3600,
        jti="e2e_" + secrets.token_hex(8),
    )
    async with tenant_transaction(tenant.merchant.iso_id):
        kid, secret = await signing_key(tenant.merchant.iso_id, tenant.merchant.id)
    return live.url(slug, f"/access/{sign(claims, kid, secret)}")


async def sign_in(page: Page, live: LivePortal, slug: str, email: str, **options: Any) -> IssuedLink:
    """Open a fresh signed link in ``page``; the portal lands the customer signed in (asserted).

    The link is opened on the merchant's ``<slug>.portal.localhost`` host even when ``link.url``
    names its custom domain, which the browser cannot resolve (nor treat as a secure context).
    """
    link = await portal_link(live, slug, email, **options)
    url = live.url(slug, f"/access/{link.token}")
    response = await page.goto(url)
    assert response is not None and response.ok, f"landing on {url} answered {response and response.status}"
    assert "/access/" not in page.url, f"still on the landing URL {page.url}"
    assert await page.locator("form[action='/logout']").count() == 1, f"not signed in at {page.url}"
    return link


# --- hosted card fields ---------------------------------------------------------------------


async def fill_card(page: Page, number: str, expiry: str = "12 / 30", cvv: str = "123") -> None:
    """Type a card into the gateway's hosted fields (each lives in its own frame)."""
    await page.frame_locator("#card-number iframe").get_by_role("textbox", name="Card number").fill(number)
    await page.frame_locator("#card-expiry iframe").get_by_role("textbox", name="Expiry date").fill(expiry)
    await page.frame_locator("#card-cvv iframe").get_by_role("textbox", name="Security code").fill(cvv)


# --- webhooks -------------------------------------------------------------------------------


class WebhookReceiver(Receiver):
    """A :class:`Receiver` that subscribes itself to merchants through the live portal's API."""

    def __init__(self, live: LivePortal) -> None:
        super().__init__([])
        self.live = live
        self.endpoints: list[tuple[str, str]] = []
        """``(api key, endpoint id)`` of every subscription, removed when the test ends."""

    async def register(self, slug: str, event_types: Sequence[str] = (), *, path: str = "/hook") -> str:
        """Subscribe this receiver to ``slug``'s events (all when ``event_types`` is empty); return the endpoint id."""
        tenant = await self.live.tenant(slug)
        async with tenant_transaction(tenant.merchant.iso_id):
            _, key = await create_api_key(
                tenant.merchant.iso_id, tenant.merchant.id, name="e2e receiver", scopes=["webhooks:write"]
            )
        async with self.live.api(key) as api:
            response = await api.post(
                "/api/v1/webhook-endpoints",
                json={"url": f"http://127.0.0.1:{self.port}{path}", "event_types": list(event_types)},
            )
        assert response.status_code == 201, response.text
        created = response.json()
        self.secrets.append(created["secret"])
        self.endpoints.append((key, created["id"]))
        return str(created["id"])

    async def unregister_all(self) -> None:
        """Delete the subscriptions (their pending deliveries are cancelled)."""
        for key, endpoint_id in self.endpoints:
            async with self.live.api(key) as api:
                response = await api.delete(f"/api/v1/webhook-endpoints/{endpoint_id}")
            assert response.status_code in (204, 404), response.text
        self.endpoints.clear()


# --- axe-core -------------------------------------------------------------------------------


class AxeViolationsError(AssertionError):
    """axe-core found accessibility violations."""


def _same_origin(url: str, origin: tuple[str, str]) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "about" or (parts.scheme, parts.netloc) == origin


def _target(target: Any) -> str:
    """An axe target; a list of selectors means frame, then element inside it."""
    if isinstance(target, list):
        return " >>> ".join(_target(part) for part in target)
    return str(target)


def describe_violations(results: dict[str, Any]) -> str:
    """A readable list of violations: rule id, impact, help, URL and the failing elements."""
    engine = results.get("testEngine", {})
    lines = [
        f"axe-core {engine.get('version', '?')} found {len(results['violations'])} violation(s) at {results['url']}"
    ]
    for violation in results["violations"]:
        lines.append(f"- {violation['id']} [{violation.get('impact')}]: {violation['help']} ({violation['helpUrl']})")
        for node in violation["nodes"]:
            summary = " ".join(str(node.get("failureSummary") or "").split())
            lines.append(f"    {_target(node['target'])}: {summary}")
    return "\n".join(lines)


async def axe_check(
    page: Page, *, tags: Sequence[str] = AXE_TAGS, disable: Sequence[str] = (), context: Any = None
) -> dict[str, Any]:
    """Run axe-core on the page and its same-origin iframes; fail listing every violation.

    ``disable`` turns rules off by id; ``context`` is axe's include/exclude context (default: the
    whole document). Returns axe's results.
    """
    # A page whose heading is already there may still be loading its stylesheet: checked unstyled,
    # every link is a 17 px line and axe reports touch targets the styled page does not have.
    await page.wait_for_load_state("load")
    script = AXE_SCRIPT_PATH.read_text(encoding="utf-8")
    top = urlsplit(page.url)
    origin = (top.scheme, top.netloc)
    for frame in page.frames:  # frames first: the top frame's run asks each frame's axe for its part
        if frame is not page.main_frame and _same_origin(frame.url, origin) and not frame.is_detached():
            await frame.evaluate(script)
    await page.main_frame.evaluate(script)
    options: dict[str, Any] = {
        "runOnly": {"type": "tag", "values": list(tags)},
        "resultTypes": ["violations"],
        "iframes": True,
        "rules": {rule: {"enabled": False} for rule in disable},
    }
    results: dict[str, Any] = await page.evaluate(
        "([context, options]) => axe.run(context || document, options)", [context, options]
    )
    if results["violations"]:
        raise AxeViolationsError(describe_violations(results))
    return results
