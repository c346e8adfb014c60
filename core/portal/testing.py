"""A pytest plugin for testing the platform and its plugins against a real PostgreSQL.

Enable it with ``pytest_plugins = ["portal.testing"]`` in your ``conftest.py``. It creates a
fresh database per test process (parallel-safe under pytest-xdist), migrates it with core and
your plugins, and offers clients for merchant hosts. Override the ``portal_plugins`` fixture to
register plugin objects that are not installed as entry points.

Database: ``--portal-db-url`` or ``PORTAL_TEST_DATABASE_URL`` (an owner connection to any
database of the server; default ``postgresql://postgres@127.0.0.1:5432/postgres``), or
``--portal-embedded`` / ``PORTAL_TEST_EMBEDDED=1`` for an embedded PostgreSQL. A server that
does not answer fails the run; nothing is skipped.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from litestar import Litestar

from portal.config import Settings
from portal.db.embedded import EmbeddedPostgres
from portal.db.engine import fetch, system_transaction, tenant_transaction, with_database
from portal.mail import MailCatcher
from portal.platform import Platform
from portal.tenancy.files import Change, TenantFile, apply_tenant_file, load_tenant_file
from portal.web.app import create_app
from portal.web.sessions import COOKIE_NAME, start_session

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
BASE_DOMAIN = "portal.localhost"

ClientFactory = Callable[[str], httpx.AsyncClient]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("portal")
    group.addoption("--portal-db-url", default=None, help="Owner DSN of the PostgreSQL server for tests.")
    group.addoption("--portal-embedded", action="store_true", help="Run tests against an embedded PostgreSQL.")


def _embedded_requested(config: pytest.Config) -> bool:
    return bool(config.getoption("--portal-embedded")) or os.environ.get("PORTAL_TEST_EMBEDDED") == "1"


@pytest.fixture(scope="session")
def portal_server_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """Owner DSN of the server tests run against (embedded or the configured one)."""
    if _embedded_requested(request.config):
        with tempfile.TemporaryDirectory(prefix="portal-embedded-") as folder:
            server = EmbeddedPostgres(Path(folder))
            dsn = server.start()
            try:
                yield with_database(dsn, "postgres")
            finally:
                server.stop()
        return
    yield request.config.getoption("--portal-db-url") or os.environ.get("PORTAL_TEST_DATABASE_URL") or DEFAULT_SERVER


@asynccontextmanager
async def scratch_database(server_dsn: str, prefix: str) -> AsyncIterator[str]:
    """A fresh, empty database on the server of ``server_dsn``; yields its owner DSN.

    ``server_dsn`` is an owner connection (a role that may create databases) to any database of
    the server. The new database is named ``prefix`` plus 12 random hex digits, and is dropped
    ``WITH (FORCE)`` when the block ends, closing any connection still open to it.
    """
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(server_dsn, name)
    finally:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def portal_database(portal_server_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty database for this test process; dropped afterwards. Yields its owner DSN."""
    async with scratch_database(portal_server_dsn, "portal_test_") as dsn:
        yield dsn


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


async def apply_tenants(platform: Platform, toml_text: str, tmp_path: Path, *, dry_run: bool = False) -> list[Change]:
    """Validate and apply a tenant file given as TOML text."""
    path = tmp_path / f"tenants-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(toml_text, encoding="utf-8")
    spec: TenantFile = load_tenant_file(path, platform.registry, platform.settings.base_domain)
    changes = await apply_tenant_file(spec, platform.registry, dry_run=dry_run, source=path.name)
    platform.tenants.invalidate()
    return changes


async def customer_id(merchant_slug: str, email: str) -> str:
    """The id of a merchant's customer by email (operator lookup, for tests)."""
    async with system_transaction():
        found = await fetch("SELECT * FROM portal_locate_merchant($1)", merchant_slug)
    iso_id, merchant_id = found[0]["iso_id"], found[0]["merchant_id"]
    async with tenant_transaction(iso_id):
        rows = await fetch(
            "SELECT id FROM portal_customer WHERE merchant_id = $1 AND email_normalized = lower($2)",
            merchant_id,
            email,
        )
    return str(rows[0]["id"])


async def sign_in(platform: Platform, client: httpx.AsyncClient, email: str) -> str:
    """Give ``client`` a session as the customer with ``email`` at the client's merchant host."""
    host = client.base_url.host
    tenant = await platform.tenants.resolve(host)
    assert tenant is not None, f"no tenant at {host}"
    cid = await customer_id(tenant.merchant.slug, email)
    token = await start_session(tenant, cid, timedelta(hours=1))
    client.cookies.set(COOKIE_NAME, token, domain=host, path="/")
    return cid


@pytest.fixture
def portal_sign_in(portal_platform: Platform) -> Callable[[httpx.AsyncClient, str], Awaitable[str]]:
    """Sign a customer in on a client's host; await the fixture with the client and an email."""

    async def do(client: httpx.AsyncClient, email: str) -> str:
        return await sign_in(portal_platform, client, email)

    return do


__all__ = ["BASE_DOMAIN", "apply_tenants", "customer_id", "scratch_database", "sign_in"]
