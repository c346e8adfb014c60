"""The PostgreSQL broker: taskiq messages as ``NOTIFY`` wake-ups, with no queue table.

Every task that must happen is a durable record (:mod:`portal.tasks.durable`, webhook
deliveries, handler runs), so a broker message only tells workers to look now. On PostgreSQL
that needs no table: a kick is ``pg_notify``, every listening worker hears it, and a message
sent while nobody listens is simply not needed (workers poll). The listening connection
reconnects with backoff when it is lost (:class:`portal.db.listener.ReconnectingListener`) and
wakes the worker once it hears again, for whatever it missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable

import asyncpg
from taskiq import AsyncBroker, BrokerMessage

from portal.db.listener import ReconnectingListener

NOTIFY_LIMIT = 7900
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes and more."""

log = logging.getLogger(__name__)
CLOSE_TIMEOUT = 10.0
"""Seconds the broker's pool may take to close before its connections are terminated."""


class PostgresWakeBroker(AsyncBroker):
    """A taskiq broker over LISTEN/NOTIFY on ``channel``; messages are not stored."""

    def __init__(self, dsn: str, channel: str) -> None:
        super().__init__()
        self.dsn = dsn
        self.channel = channel
        self._pool: asyncpg.Pool | None = None
        self._listener: ReconnectingListener | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.on_listening: Callable[[], None] | None = None
        """Called each time the listener (re)connects: the worker looks for what it may have missed."""

    @property
    def connected(self) -> bool:
        """Whether a worker hears wake-ups now (always True for a process that only sends)."""
        return self._listener is None or self._listener.connected

    @property
    def last_error(self) -> str | None:
        """Why the listener last failed to connect, if it did."""
        return None if self._listener is None else self._listener.last_error

    async def startup(self) -> None:
        """Open a small pool for sending; a worker also starts listening."""
        await super().startup()
        self._pool = await asyncpg.create_pool(self.dsn, min_size=0, max_size=2, timeout=5.0)
        if self.is_worker_process:
            self._listener = ReconnectingListener(
                self.dsn, self.channel, self._heard, name="task wake-ups", on_connect=self._connected
            )
            await self._listener.start()

    def _heard(self, payload: str) -> None:
        self._queue.put_nowait(payload.encode())

    def _connected(self) -> None:
        if self.on_listening is not None:
            self.on_listening()

    async def shutdown(self) -> None:
        """Stop listening and close the pool."""
        await super().shutdown()
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:  # a connection never handed back must not hold the process's stop forever
                await asyncio.wait_for(pool.close(), timeout=CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning("broker: connections still busy after %ss; closing them", CLOSE_TIMEOUT)
                pool.terminate()

    async def kick(self, message: BrokerMessage) -> None:
        """Send ``message`` to every listening worker (``ValueError`` when it is too long to notify)."""
        if self._pool is None:
            raise RuntimeError("start the broker before kicking")
        payload = message.message.decode()
        if len(payload.encode()) > NOTIFY_LIMIT:
            raise ValueError(f"task message of {len(payload)} characters: queue durable tasks, not large messages")
        async with self._pool.acquire() as connection:
            await connection.execute("SELECT pg_notify($1, $2)", self.channel, payload)

    async def listen(self) -> AsyncGenerator[bytes, None]:
        """Yield each message heard, for as long as the worker runs."""
        while True:
            yield await self._queue.get()
