"""The platform under test: settings, mail catcher, a migrated and started platform, its web app."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar

from portal.config import Settings
from portal.mail import MailCatcher
from portal.platform import Platform
from portal.web.app import create_app

BASE_DOMAIN = "portal.localhost"

ClientFactory = Callable[[str], httpx.AsyncClient]


@pytest.fixture(scope="session")
def portal_plugins() -> list[tuple[str, object]]:
    """Plugin objects to register besides installed entry points; override in your conftest."""
    return []


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def portal_mail() -> AsyncIterator[MailCatcher]:
    """A real SMTP server on loopback that keeps every message the platform sends."""
    catcher = MailCatcher()
    await catcher.start()
    try:
        yield catcher
    finally:
        await catcher.stop()


@pytest.fixture(scope="session")
def portal_settings(portal_database: str, portal_mail: MailCatcher) -> Settings:
    """Settings pointing at the test database and the test SMTP server."""
    return Settings(
        database_url=portal_database,
        base_domain=BASE_DOMAIN,
        tenant_cache_ttl=30.0,
        smtp_host="127.0.0.1",
        smtp_port=portal_mail.port or 25,
        mail_from="portal@portal.localhost",
    )


async def resolve_loopback_only(host: str, port: int) -> list[str]:
    """The test platform's resolver: ``localhost`` names are loopback, every other name is unknown.

    Tests never send a DNS query off the machine, whatever webhook URLs they save.
    """
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return ["127.0.0.1"]
    raise socket.gaierror(socket.EAI_NONAME, f"{host} is not resolved in tests")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def portal_platform(
    portal_settings: Settings, portal_plugins: list[tuple[str, object]]
) -> AsyncIterator[Platform]:
    """A migrated, started platform with the extra plugins registered."""
    platform = Platform(portal_settings, extra_plugins=portal_plugins)
    platform.resolve = resolve_loopback_only
    await platform.migrate()
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()


@pytest.fixture(scope="session")
def portal_app(portal_platform: Platform) -> Litestar:
    """The web app of the test platform."""
    return create_app(portal_platform, manage_platform=False)


@pytest_asyncio.fixture(loop_scope="session")
async def portal_client(portal_app: Litestar) -> AsyncIterator[ClientFactory]:
    """Make HTTPS clients for a merchant host; call the fixture with the host name."""
    clients: list[httpx.AsyncClient] = []
    transport = httpx.ASGITransport(app=portal_app)  # type: ignore[arg-type]

    def make(host: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=transport, base_url=f"https://{host}")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
