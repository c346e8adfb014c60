"""The one piccolo engine of the process and the transactions that scope it to an ISO.

Every query on tenant-owned tables runs inside :func:`tenant_transaction`, which sets
``portal.iso_id`` for that transaction only; row-level security shows nothing without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

log = logging.getLogger(__name__)

ENGINE = PostgresEngine(config={}, extensions=(), log_queries=False)
"""Shared by every table; :class:`portal.db.lifecycle.DatabaseRuntime` points it at a DSN."""

_CURRENT_ISO: ContextVar[str | None] = ContextVar("portal_current_iso", default=None)
_AFTER_COMMIT: ContextVar[list[Callable[[], Awaitable[None]]] | None] = ContextVar("portal_after_commit", default=None)


class TenantScopeError(RuntimeError):
    """A transaction for one ISO was asked to serve another."""


def with_user(dsn: str, user: str, password: str | None) -> str:
    """Return ``dsn`` with its user name (and password) replaced."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    credentials = quote(user, safe="")
    if password:
        credentials += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, f"{credentials}@{host}", parts.path, parts.query, parts.fragment))


def with_database(dsn: str, database: str) -> str:
    """Return ``dsn`` pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@asynccontextmanager
async def tenant_transaction(iso_id: str) -> AsyncIterator[PostgresTransaction]:
    """Open (or join) a transaction in which row-level security admits only ``iso_id``."""
    current = ENGINE.current_transaction.get()
    if current is not None:
        if _CURRENT_ISO.get() != iso_id:
            raise TenantScopeError("a transaction is already open for another ISO or for none")
        yield current
        return
    callbacks: list[Callable[[], Awaitable[None]]] = []
    callbacks_token = _AFTER_COMMIT.set(callbacks)
    try:
        async with ENGINE.transaction() as transaction:
            await transaction.connection.execute("SELECT set_config('portal.iso_id', $1, true)", iso_id)
            token = _CURRENT_ISO.set(iso_id)
            try:
                yield transaction
            finally:
                _CURRENT_ISO.reset(token)
    finally:
        _AFTER_COMMIT.reset(callbacks_token)
    for callback in callbacks:  # reached only when the transaction committed
        try:
            await callback()
        except Exception:
            log.exception("after-commit callback failed")


@asynccontextmanager
async def system_transaction() -> AsyncIterator[PostgresTransaction]:
    """A transaction with no ISO set: only the SECURITY DEFINER lookups return anything."""
    if ENGINE.current_transaction.get() is not None:
        raise TenantScopeError("a system transaction cannot join a tenant transaction")
    async with ENGINE.transaction() as transaction:
        yield transaction


def after_commit(callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` once the enclosing tenant transaction has committed (never on rollback).

    A callback registered several times in one transaction (a kick per emitted event) runs once.
    """
    callbacks = _AFTER_COMMIT.get()
    if callbacks is None or ENGINE.current_transaction.get() is None:
        raise TenantScopeError("after_commit needs an open tenant transaction")
    if callback not in callbacks:
        callbacks.append(callback)


async def transaction_lock(*key: str) -> None:
    """Hold a PostgreSQL advisory lock named by ``key`` (joined with ``:``) until the transaction ends.

    Serialises work on one thing (a merchant's audit chain, a customer's cards, an order) across
    processes; other keys never wait.
    """
    await fetch("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", ":".join(key))


def current_iso() -> str | None:
    """The ISO of the enclosing tenant transaction, if any."""
    return _CURRENT_ISO.get() if ENGINE.current_transaction.get() is not None else None


def json_value(value: Any) -> Any:
    """A JSON or JSONB column's value: asyncpg hands it over as text, already-parsed values pass."""
    return json.loads(value) if isinstance(value, str) else value


async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run raw SQL in the current transaction (or a pooled connection) and return dicts."""
    transaction = ENGINE.current_transaction.get()
    if transaction is not None:
        rows = await transaction.connection.fetch(sql, *args)
    elif ENGINE.pool is not None:
        async with ENGINE.pool.acquire() as connection:
            rows = await connection.fetch(sql, *args)
    else:
        connection = await ENGINE.get_new_connection()
        try:
            rows = await connection.fetch(sql, *args)
        finally:
            await connection.close()
    return [dict(row) for row in rows]
