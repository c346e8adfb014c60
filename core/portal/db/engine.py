"""The one piccolo engine of the process and the transactions that scope it to an ISO.

Every query on tenant-owned tables runs inside :func:`tenant_transaction`, which sets
``portal.iso_id`` for that transaction only; row-level security shows nothing without it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import asyncpg.pool
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

log = logging.getLogger(__name__)

ENGINE = PostgresEngine(config={}, extensions=(), log_queries=False)
"""Shared by every table; :class:`portal.db.lifecycle.DatabaseRuntime` points it at a DSN."""

_CURRENT_ISO: ContextVar[str | None] = ContextVar("portal_current_iso", default=None)
Callback = Callable[[], Awaitable[None]]
_AFTER_COMMIT: ContextVar[list[Callback] | None] = ContextVar("portal_after_commit", default=None)
_BEGIN_ISO: ContextVar[str | None] = ContextVar("portal_begin_iso", default=None)
"""The ISO the ``BEGIN`` of the tenant transaction being opened scopes in the same round trip."""
_PLAIN_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")
"""Ids safe to write as an SQL literal (public ids are letters, digits and ``_``)."""
_BEFORE_COMMIT: ContextVar[tuple[list[Callback], list[Callback]] | None] = ContextVar(
    "portal_before_commit", default=None
)
_TRANSACTION_STATE: ContextVar[dict[str, Any] | None] = ContextVar("portal_transaction_state", default=None)


class TenantScopeError(RuntimeError):
    """A transaction for one ISO was asked to serve another."""


class PortalConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection released without asyncpg's reset statement (one round trip fewer per release).

    asyncpg resets a connection on release with ``SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL;``. The application leaves nothing for it to undo: the tenant scope is
    set with ``set_config(..., true)`` (transaction-local), locks are ``pg_advisory_xact_lock``,
    cursors live in transactions and nothing listens on pooled connections (the broker and the
    tenant listener have connections of their own). asyncpg still rolls back a transaction left
    open and drops listeners on release. ``tests/core/test_pool_release.py`` checks the invariants.
    """

    began_with_iso: str | None = None
    """The ISO the last ``BEGIN`` of this connection set (``None``: it set none); every ``BEGIN`` sets it."""

    def get_reset_query(self) -> str:
        """Nothing to run on release (see the class)."""
        return ""

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 - asyncpg's
        """Run ``query``; a tenant transaction's ``BEGIN`` also sets its ISO, in the same round trip.

        The tenant scope is an id of the form :data:`_PLAIN_ID`, written as a literal, so the two
        statements go as one simple query (``BEGIN; SELECT set_config(...)``).
        """
        if query == "BEGIN;" and not args:
            iso_id = _BEGIN_ISO.get()
            self.began_with_iso = iso_id
            if iso_id is not None:
                query = f"BEGIN; SELECT set_config('portal.iso_id', '{iso_id}', true);"
        result: str = await super().execute(query, *args, timeout=timeout)
        return result


class BoundedPool(asyncpg.pool.Pool):  # type: ignore[misc]
    """An asyncpg pool whose ``acquire`` gives up after ``acquire_timeout`` seconds.

    piccolo acquires without a timeout; with this pool a request waits for a connection (an
    idle one, or a new one being opened) at most that long, then meets a ``TimeoutError``.
    """

    acquire_timeout: float | None = None

    def acquire(self, *, timeout: float | None = None) -> Any:
        """Acquire a connection, waiting at most ``timeout`` (default ``acquire_timeout``) seconds."""
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def open_pool(
    dsn: str, *, min_size: int, max_size: int, acquire_timeout: float, statement_timeout: float
) -> BoundedPool:
    """The process's pool: acquiring and opening connections, and every query, are bounded in time."""
    pool = BoundedPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=PortalConnection,
        record_class=asyncpg.Record,
        timeout=acquire_timeout,  # opening one connection
        command_timeout=statement_timeout,  # each query, cancelled on the server when it runs out
    )
    pool.acquire_timeout = acquire_timeout
    await pool
    return pool


UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: connection does not exist, failure, cannot connect
    asyncpg.OperatorInterventionError,  # class 57: admin or crash shutdown, cannot connect now, cancelled
    asyncpg.TooManyConnectionsError,  # 53300
)
"""Errors the server sends (or asyncpg raises in its name) when it cannot serve at all."""
_CLOSED = re.compile(r"connection (is|was) closed|pool is clos")


def _raised_in_asyncpg(exc: BaseException) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        if str(traceback.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg"):
            return True
        traceback = traceback.tb_next
    return False


def broken_connection(exc: BaseException) -> bool:
    """True for asyncpg's "cannot switch to state …; another operation is in progress".

    asyncpg raises it when a connection is used while an operation it started never finished:
    the server went away in the middle of it (a restart). The connection cannot be used again.
    """
    return isinstance(exc, asyncpg.InternalClientError) and str(exc).startswith("cannot switch to state")


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) says the database is down, unreachable or out of time.

    That is: the server's connection and shutdown errors (classes 08 and 57, too many
    connections), asyncpg's refusals to use a closed connection or pool, and network errors
    (``OSError``: refused, reset, unknown host) and timeouts (acquiring a connection, opening
    one, a query running past ``db_statement_timeout``) raised inside asyncpg. Anything else,
    our own bugs among them, is not.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UNAVAILABLE_ERRORS):
            return True
        if isinstance(current, asyncpg.InterfaceError) and _CLOSED.search(str(current)):
            return True
        if broken_connection(current):
            return True
        if isinstance(current, (OSError, TimeoutError)) and _raised_in_asyncpg(current):
            return True
        current = current.__cause__
    return False


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
    callbacks: list[Callback] = []
    callbacks_token = _AFTER_COMMIT.set(callbacks)
    finishing: list[Callback] = []
    finishing_last: list[Callback] = []
    finishing_token = _BEFORE_COMMIT.set((finishing, finishing_last))
    state_token = _TRANSACTION_STATE.set({})
    begin_token = _BEGIN_ISO.set(iso_id if _PLAIN_ID.fullmatch(iso_id) else None)
    begun = False
    try:
        async with plain_transaction() as transaction:
            _BEGIN_ISO.reset(begin_token)
            begun = True
            connection = transaction.connection
            if getattr(connection, "began_with_iso", None) != iso_id:  # a PortalConnection's BEGIN set it
                await connection.execute("SELECT set_config('portal.iso_id', $1, true)", iso_id)
            token = _CURRENT_ISO.set(iso_id)
            try:
                yield transaction
                for finish in finishing:  # the body succeeded: its last writes, still inside the transaction
                    await finish()
                for finish in finishing_last:
                    await finish()
            finally:
                _CURRENT_ISO.reset(token)
    finally:
        if not begun:
            _BEGIN_ISO.reset(begin_token)
        _TRANSACTION_STATE.reset(state_token)
        _BEFORE_COMMIT.reset(finishing_token)
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
    async with plain_transaction() as transaction:
        yield transaction


@asynccontextmanager
async def plain_transaction() -> AsyncIterator[PostgresTransaction]:
    """``ENGINE.transaction()``, which the running task forgets even when ending it fails.

    Piccolo resets its current-transaction context variable only once the commit (or rollback)
    and the connection's release succeeded. When the connection is lost right then (the server
    stops), the variable would go on naming the dead transaction, and every later transaction of
    the task would be refused as nested: a worker lane, which runs in one task for good, would
    never work again.

    The commit is made here, before piccolo hands the connection back: when only that hand-back
    fails (the server went away just after the commit; asyncpg then closes the connection), the
    transaction's work is kept and the caller goes on, with a warning in the log.
    """
    transaction = ENGINE.transaction()
    committed = False
    try:
        async with transaction:
            yield transaction
            # The body may have ended the transaction itself (a dry run rolls back): piccolo's flags.
            if not transaction._committed and not transaction._rolled_back:
                await transaction.commit()  # type: ignore[no-untyped-call]
            committed = transaction._committed
    except Exception as exc:
        connection = getattr(transaction, "connection", None)  # set once a connection was acquired
        if broken_connection(exc) and connection is not None:
            connection.terminate()  # never handed out again: the pool opens a fresh one
        if not committed:
            raise
        log.warning("a connection could not go back to the pool after its commit, it was closed: %r", exc)
    finally:
        if ENGINE.current_transaction.get() is transaction:
            ENGINE.current_transaction.reset(transaction.context)
            if ENGINE.pool is not None:
                with suppress(Exception):  # a lost connection went back to the pool already
                    await ENGINE.pool.release(transaction.connection)


class Journal(list[Any]):
    """A list in :func:`transaction_state` of what the transaction did and has yet to write.

    A savepoint that rolls back cuts it back to its length when the savepoint began.
    """


def transaction_state() -> dict[str, Any]:
    """What the enclosing tenant transaction remembers until it ends.

    Caches of what it wrote or locked (the audit chain's head while its lock is held, for one),
    which a savepoint that rolls back (:func:`savepoint`) forgets, and :class:`Journal` lists,
    which it cuts back.
    """
    state = _TRANSACTION_STATE.get()
    if state is None or ENGINE.current_transaction.get() is None:
        raise TenantScopeError("transaction_state needs an open tenant transaction")
    return state


@asynccontextmanager
async def savepoint() -> AsyncIterator[None]:
    """Run the block in a savepoint of the current transaction: an exception undoes only the block.

    Locks taken and rows written inside are released and undone with it, and so is what the
    block added to the transaction's state (:func:`transaction_state`).
    """
    transaction = ENGINE.current_transaction.get()
    if transaction is None:
        raise TenantScopeError("a savepoint needs an open transaction")
    state = _TRANSACTION_STATE.get()
    if state is None:
        state = {}
    marks = {key: len(value) for key, value in state.items() if isinstance(value, Journal)}
    try:
        async with transaction.connection.transaction():
            yield
    except BaseException:
        for key, value in list(state.items()):
            if isinstance(value, Journal):
                del value[marks.get(key, 0) :]
            else:
                del state[key]
        raise


def before_commit(callback: Callback, *, last: bool = False) -> None:
    """Run ``callback`` inside the enclosing tenant transaction once its body succeeded, before it commits.

    Callbacks run in the order they were registered, those registered with ``last`` after all
    the others (the events kept for the commit are written last, whatever the others emitted).
    An exception rolls the transaction back. A callback registered twice runs once.
    """
    lists = _BEFORE_COMMIT.get()
    if lists is None or ENGINE.current_transaction.get() is None:
        raise TenantScopeError("before_commit needs an open tenant transaction")
    callbacks = lists[1] if last else lists[0]
    if callback not in callbacks:
        callbacks.append(callback)


def after_commit(callback: Callback) -> None:
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
