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

import difflib
import os
import re
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import pytest_asyncio
from litestar import Litestar

from portal.access.csrf import CSRF_COOKIE, token_for
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


# --- the cross-tenant matrix ------------------------------------------------------------------

ID = "{id}"
"""The placeholder for the id in a route's path or query template."""

_NONCE = re.compile(r"'nonce-[^']*'|nonce=\"[^\"]*\"")
_CSRF_FIELD = re.compile(r'(name="csrf_token"\s+value=")[^"]*(")')
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Foreign:
    """An object the signed-in customer must not reach: its id, and text that would give it away.

    ``text`` is what only that object would put on a page: its last four digits, its name, its
    amount. None of it may appear on any answer the signed-in customer gets for the id.
    """

    id: str
    text: tuple[str, ...] = ()


def _foreign(objects: Foreign | Sequence[Foreign]) -> tuple[Foreign, ...]:
    return (objects,) if isinstance(objects, Foreign) else tuple(objects)


@dataclass(frozen=True)
class ForeignIds:
    """The ids a route is tried with, seen from one signed-in customer (customer A).

    ``other_customer``: objects of another customer of A's merchant; ``other_merchant``: of a
    customer of another merchant of the same ISO (the same email address is the strongest case);
    ``other_iso``: of a customer of a merchant of another ISO. Each is one object or several (a
    live one and a removed one, say). ``unknown`` is a well-formed id that names nothing: every
    other id must be answered exactly like it. ``removed`` are A's own objects that the route must
    no longer reach; ``malformed`` are ids that are not ids at all (by default derived from
    ``unknown``: upper case, one character short, and ``<prefix>_not-an-id``).
    """

    other_customer: Foreign | Sequence[Foreign]
    other_merchant: Foreign | Sequence[Foreign]
    other_iso: Foreign | Sequence[Foreign]
    unknown: str
    removed: Foreign | Sequence[Foreign] = ()
    malformed: Sequence[str] | None = None

    def cases(self) -> list[tuple[str, Foreign]]:
        """``(label, object)`` for every id to try, the unknown one excepted."""
        prefix = self.unknown.split("_", 1)[0]
        malformed = (
            self.malformed
            if self.malformed is not None
            else (self.unknown.upper(), self.unknown[:-1], f"{prefix}_not-an-id")
        )
        found: list[tuple[str, Foreign]] = []
        for label, objects in (
            ("other customer", self.other_customer),
            ("other merchant", self.other_merchant),
            ("other ISO", self.other_iso),
            ("removed", self.removed),
        ):
            found += [(label, item) for item in _foreign(objects)]
        found += [("malformed", Foreign(value)) for value in malformed]
        return found


@dataclass(frozen=True)
class _Seen:
    status: int
    location: str
    body: str


def _csrf_headers(client: httpx.AsyncClient, method: str) -> dict[str, str]:
    """The ``X-CSRF-Token`` header an unsafe request of ``client``'s visitor needs."""
    if method in _SAFE_METHODS:
        return {}
    seed = client.cookies.get(COOKIE_NAME) or client.cookies.get(CSRF_COOKIE)
    assert seed, "the client has neither a session nor a CSRF cookie; sign it in first"
    return {"x-csrf-token": token_for(seed)}


def _mask(text: str, ids: Iterable[str]) -> str:
    """``text`` with nonces, CSRF tokens and the requested id replaced by placeholders."""
    text = _CSRF_FIELD.sub(r"\1…\2", _NONCE.sub("nonce", text))
    for value in ids:
        if value:
            text = text.replace(value, ID)
    return text


async def _try(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    query: str,
    value: str,
    data: Mapping[str, str] | None,
) -> _Seen:
    quoted = quote(value, safe="")
    url = path.replace(ID, quoted) + (f"?{query.replace(ID, quoted)}" if query else "")
    response = await client.request(
        method,
        url,
        headers=_csrf_headers(client, method),
        data=dict(data) if data is not None and method not in _SAFE_METHODS else None,
    )
    variants = sorted({value, quoted, quote(value)}, key=len, reverse=True)
    return _Seen(
        response.status_code,
        _mask(response.headers.get("location", ""), variants),
        _mask(response.text, variants),
    )


async def assert_no_cross_tenant_leak(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    query: str = "",
    *,
    ids: ForeignIds,
    mine: Foreign | None = None,
    data: Mapping[str, str] | None = None,
    state: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Request a route with every id of ``ids`` as ``client``'s customer; assert nothing leaks.

    ``path`` and ``query`` are templates with ``{id}`` where the id goes (``"/invoices/{id}"``;
    ``"done=paid&invoice={id}"``, without the ``?``). An id in the path must answer 404 for
    every id of ``ids``, the unknown one included. An id only in the query must give exactly the
    page the unknown id gives: the same status, the same ``Location`` and the same body, compared
    with nonces, CSRF tokens and the requested id itself masked. In both cases no ``text`` of a
    foreign object may appear in the answer.

    ``client`` must be signed in (see :func:`sign_in`); unsafe methods are sent with the CSRF
    header of its session, so they reach the route's id lookup, and with ``data`` as the form.
    ``mine``, one of the customer's own objects the route does show, is requested once for
    ``GET`` routes to prove that the route reads the id at all: its answer must differ from the
    unknown id's. ``state``, when given, is awaited before and after; its results must be equal
    (for example the rows a ``POST`` would change). Every failure is reported at once.
    """
    method = method.upper()
    in_path = ID in path
    if not in_path and ID not in query:
        raise ValueError(f"neither {path!r} nor {query!r} has an {ID} placeholder")
    route = f"{method} {path}" + (f"?{query}" if query else "")
    before = await state() if state is not None else None
    baseline = await _try(client, method, path, query, ids.unknown, data)
    failures: list[str] = []
    if in_path and baseline.status != 404:
        failures.append(f"unknown id {ids.unknown}: {baseline.status}, not 404")
    if mine is not None and method in _SAFE_METHODS:
        own = await _try(client, method, path, query, mine.id, data)
        if own == baseline:
            failures.append(f"the customer's own {mine.id} is answered like an unknown id: is {ID} read at all?")
    for label, item in ids.cases():
        seen = await _try(client, method, path, query, item.id, data)
        where = f"{label} {item.id!r}"
        if in_path and seen.status != 404:
            failures.append(f"{where}: {seen.status}, not 404")
        if seen.status != baseline.status or seen.location != baseline.location:
            failures.append(
                f"{where}: {seen.status} {seen.location!r}, the unknown id gives "
                f"{baseline.status} {baseline.location!r}"
            )
        elif seen.body != baseline.body:
            failures.append(
                f"{where}: the page differs from the unknown id's:\n{_first_difference(baseline.body, seen.body)}"
            )
        leaked = [text for text in item.text if text in seen.body or text in seen.location]
        if leaked:
            failures.append(f"{where}: the answer shows {leaked}")
    if state is not None:
        after = await state()
        if after != before:
            failures.append(f"the state changed:\n  before: {before!r}\n  after:  {after!r}")
    assert not failures, f"{route} as the signed-in customer:\n- " + "\n- ".join(failures)


def _first_difference(expected: str, actual: str) -> str:
    """The first lines where two pages differ, for a failure message."""
    lines = difflib.unified_diff(expected.splitlines(), actual.splitlines(), "unknown id", "this id", n=1, lineterm="")
    return "\n".join(list(lines)[:12])


__all__ = [
    "BASE_DOMAIN",
    "ID",
    "Foreign",
    "ForeignIds",
    "apply_tenants",
    "assert_no_cross_tenant_leak",
    "customer_id",
    "scratch_database",
    "sign_in",
]
