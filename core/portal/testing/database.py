"""The PostgreSQL server tests run against, and a fresh database per test process."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from portal.db.embedded import EmbeddedPostgres
from portal.db.engine import with_database

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def add_options(parser: pytest.Parser) -> None:
    """``--portal-db-url`` and ``--portal-embedded``."""
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
