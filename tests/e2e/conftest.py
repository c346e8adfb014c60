"""Browser fixtures: the live portal, Chromium pages at phone and desktop size, webhooks, axe-core.

A test that takes ``page`` runs twice, at the phone and at the desktop viewport::

    from support.browser import sign_in

    async def test_overview(page, live_portal, webhook_receiver, axe_check):
        await webhook_receiver.register("t-greenfield", ["portal_session.started"])
        await sign_in(page, live_portal, "t-greenfield", "jane@globalco.com")
        event = await webhook_receiver.wait_for_event("portal_session.started")
        assert event["data"]["object"]["purpose"] == "portal"
        await axe_check(page)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from portal.platform import Platform
from portal.tasks.worker import run_worker
from support.browser import (
    VIEWPORTS,
    LivePortal,
    Viewport,
    WebhookReceiver,
    chromium_path,
    launch_chromium,
    new_page,
    serving,
)
from support.browser import axe_check as run_axe

OpenPage = Callable[[Viewport | str], Awaitable[Page]]

expect.set_options(timeout=15_000)  # a card save is tokenize, POST and redirect: allow for a busy machine


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def live_portal(shared_tenants: Platform) -> AsyncIterator[LivePortal]:
    """The session platform (with the shared tenants) served by uvicorn on a free loopback port.

    Merchants answer at ``live_portal.url(slug, path)``, that is ``http://<slug>.portal.localhost:<port>``.
    The server runs as a task of the session event loop, once per test process (each xdist worker
    has its own platform, database and port).

    Links the portal mints must name this server (``http``, this port), but the session platform
    is shared with every other test of the process and may already have been built with the
    default settings, so ``portal_settings`` is not overridden. Instead the app is built by the
    production ``create_app`` around a view of the started platform whose ``settings`` differ
    (``public_scheme="http"``, ``public_port``, ``webhook_allow_private`` for loopback receivers);
    everything else (database, tenants, themes, plugins, broker) is the platform's own.
    ``live_portal.settings`` are those settings; mint links with them (see ``support.browser``).
    Tasks a worker runs (sign-in emails) still use the platform's own settings.
    """
    async with serving(shared_tenants) as live:
        yield live


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium (``$PORTAL_TEST_CHROMIUM`` overrides the path), headless; a missing one fails."""
    chromium_path()
    playwright = await async_playwright().start()
    try:
        launched = await launch_chromium(playwright)
        try:
            yield launched
        finally:
            await launched.close()
    finally:
        await playwright.stop()


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> Viewport:
    """Phone (390 by 844, touch, scale 3) and desktop (1280 by 800): a test taking it runs at both."""
    return VIEWPORTS[str(request.param)]


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, viewport: Viewport) -> AsyncIterator[Page]:
    """A page in a fresh browser context at ``viewport``; closed after the test."""
    context, opened = await new_page(browser, viewport)
    try:
        yield opened
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page_at(browser: Browser) -> AsyncIterator[OpenPage]:
    """``await page_at("phone")`` (or a :class:`Viewport`): more pages, each in a fresh context."""
    contexts = []

    async def open_page(viewport: Viewport | str) -> Page:
        context, opened = await new_page(browser, viewport)
        contexts.append(context)
        return opened

    try:
        yield open_page
    finally:
        for context in contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def delivery_worker(live_portal: LivePortal) -> AsyncIterator[asyncio.Task[None]]:
    """Deliver due webhooks (and run due event handlers) while the test runs.

    Runs the :class:`portal.tasks.worker.Worker` that ``portal worker`` runs, looking for due
    work every 0.2 s, with the live portal's settings (loopback receivers allowed); queued tasks
    (sign-in emails) run too.
    """
    task = asyncio.create_task(run_worker(live_portal.platform, poll_interval=0.2), name="e2e-worker")
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest_asyncio.fixture(loop_scope="session")
async def webhook_receiver(
    live_portal: LivePortal, delivery_worker: asyncio.Task[None]
) -> AsyncIterator[WebhookReceiver]:
    """A started, signature-verifying receiver; ``await webhook_receiver.register(slug, event_types)``.

    Registering creates the endpoint through the live portal's API; the endpoints are deleted
    after the test. The delivery worker runs meanwhile; ``await wait_for_event(type)`` returns a body.
    """
    receiver = WebhookReceiver(live_portal)
    await receiver.start()
    try:
        yield receiver
    finally:
        try:
            await receiver.unregister_all()
        finally:
            await receiver.stop()


@pytest.fixture
def axe_check() -> Callable[..., Awaitable[object]]:
    """``await axe_check(page)``: axe-core (WCAG 2.2 AA tags) on the page and its same-origin iframes."""
    return run_axe
