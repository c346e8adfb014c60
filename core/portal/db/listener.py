"""A LISTEN connection that notices when it is lost and reconnects with backoff, saying so in the log.

Used for tenant-change notifications and for the PostgreSQL broker's wake-ups. A drop is seen
two ways: asyncpg's termination callback (the server closed the connection or the socket broke)
and a periodic ``SELECT 1`` that must answer within :data:`CHECK_TIMEOUT` (a silent network
partition). Each reconnection runs ``on_connect`` so the owner can catch up on what it may have
missed while deaf, and each loss runs ``on_lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

FIRST_DELAY = 0.5
MAX_DELAY = 30.0
CHECK_EVERY = 15.0
"""Seconds between liveness checks of an idle listening connection."""
CHECK_TIMEOUT = 5.0


class ReconnectingListener:
    """LISTEN on ``channel`` as long as it runs; ``connected`` says whether it hears right now."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[str], None],
        *,
        name: str,
        on_connect: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.name = name
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._on_lost = on_lost
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        """True while the LISTEN connection is open."""
        return self._connection is not None and not self._connection.is_closed()

    async def start(self) -> bool:
        """Connect once now (returns whether that worked) and keep reconnecting in the background."""
        ok = await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"listen-{self.channel}")
        return ok

    async def _connect(self) -> bool:
        try:
            connection = await asyncpg.connect(self.dsn, timeout=CHECK_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        try:
            await connection.add_listener(self.channel, self._notified)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            connection.terminate()
            return False
        self._lost.clear()
        connection.add_termination_listener(lambda _connection: self._lose())
        self._connection = connection
        self.last_error = None
        if self._on_connect is not None:
            self._on_connect()
        return True

    def _lose(self) -> None:
        self._lost.set()
        if self._on_lost is not None:
            self._on_lost()

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        self._on_notify(str(payload))

    async def _supervise(self) -> None:
        while True:
            if self.connected:
                await self._watch()
                if not self._lost.is_set():  # a failed liveness check: lost all the same
                    self._lose()
                self._drop()
                log.warning("%s: the LISTEN connection was lost; reconnecting", self.name)
            lost_at, delay = time.monotonic(), FIRST_DELAY
            while not await self._connect():
                log.warning("%s: cannot reconnect (%s); next try in %g s", self.name, self.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
            log.info("%s: listening again after %.1f s", self.name, time.monotonic() - lost_at)

    async def _watch(self) -> None:
        """Return once the connection is lost: closed by the server, or silent to a liveness check."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), CHECK_EVERY)
                return
            connection = self._connection
            if connection is None:
                return
            try:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), CHECK_TIMEOUT)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                return

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()

    async def close(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection.close(), timeout=CHECK_TIMEOUT)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                connection.terminate()
