"""Which errors mean "the database is unavailable" (a 503), and which are ours (a 500).

Every error here is raised for real by asyncpg against the test server (or a closed port), not
constructed by hand. ``tests/reliability/test_database_outage.py`` stops a server under a live
portal.
"""

from __future__ import annotations

import asyncio
import socket
import time

import asyncpg
import pytest

from portal.config import Settings
from portal.db.engine import database_unavailable, open_pool


async def raised(action) -> BaseException:
    with pytest.raises(BaseException) as caught:
        await action()
    return caught.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


async def test_a_refused_connection_is_unavailable() -> None:
    port = closed_port()
    exc = await raised(lambda: asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", timeout=5))
    assert isinstance(exc, OSError)
    assert database_unavailable(exc)


async def test_a_terminated_or_closed_connection_is_unavailable(portal_settings: Settings) -> None:
    owner = await asyncpg.connect(portal_settings.database_url)
    victim = await asyncpg.connect(portal_settings.database_url)
    try:
        # Terminate the backend while a query of the victim is running there, so the error is the
        # one a request in flight meets (not a race between the notice and the next query).
        pid = victim.get_server_pid()
        sleeping = asyncio.create_task(victim.fetch("SELECT pg_sleep(30)"))
        deadline = time.monotonic() + 10
        while await owner.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid) != "active":
            assert time.monotonic() < deadline, "the victim's query never started"
            await asyncio.sleep(0.01)
        await owner.execute("SELECT pg_terminate_backend($1)", pid)
        terminated = await raised(lambda: sleeping)
        assert database_unavailable(terminated), repr(terminated)
        await victim.close()
        closed = await raised(lambda: victim.fetch("SELECT 1"))
        assert isinstance(closed, asyncpg.InterfaceError)
        assert database_unavailable(closed), repr(closed)
    finally:
        await owner.close()
        victim.terminate()


async def test_a_query_past_the_statement_timeout_and_a_busy_pool_are_unavailable(portal_settings: Settings) -> None:
    assert portal_settings.database_url is not None
    pool = await open_pool(
        portal_settings.database_url, min_size=1, max_size=1, acquire_timeout=0.5, statement_timeout=0.5
    )
    try:
        slow = await raised(lambda: pool.fetch("SELECT pg_sleep(5)"))
        assert isinstance(slow, TimeoutError)
        assert database_unavailable(slow)
        async with pool.acquire():
            busy = await raised(lambda: pool.acquire().__aenter__())
        assert isinstance(busy, TimeoutError)
        assert database_unavailable(busy)
        assert await pool.fetchval("SELECT 1") == 1  # the pool still serves afterwards
    finally:
        await pool.close()


async def test_our_own_mistakes_are_not(portal_settings: Settings) -> None:
    connection = await asyncpg.connect(portal_settings.database_url)
    try:
        for sql in ("SELECT 1 / 0", "SELECT * FROM no_such_table", "SELEC 1"):
            exc = await raised(lambda sql=sql: connection.fetch(sql))
            assert isinstance(exc, asyncpg.PostgresError)
            assert not database_unavailable(exc), repr(exc)
        wrong_arguments = await raised(lambda: connection.fetch("SELECT $1::int", 1, 2))
        assert not database_unavailable(wrong_arguments), repr(wrong_arguments)
    finally:
        await connection.close()
    assert not database_unavailable(TimeoutError("our own deadline"))
    assert not database_unavailable(ConnectionRefusedError("a webhook receiver"))
    assert not database_unavailable(RuntimeError("a bug"))


def test_a_connection_left_mid_operation_by_a_restart_is_unavailable() -> None:
    """asyncpg's words when a connection the server dropped mid-operation is used again (seen after
    a PostgreSQL restart in the fault test); other internal errors are not the database's absence."""
    left = asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
    assert database_unavailable(left)
    wrapped = RuntimeError("a lane's round")
    wrapped.__cause__ = left
    assert database_unavailable(wrapped)
    assert not database_unavailable(asyncpg.InternalClientError("unexpected codec state"))
