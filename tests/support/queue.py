"""The task machinery as the tests see it: durable task rows and the PostgreSQL broker's wake-ups."""

from __future__ import annotations

import asyncpg

from portal.tasks.broker import QUEUE_CHANNEL


async def tasks_queued(owner: asyncpg.Connection) -> int:
    """How many durable tasks this test database holds (queued ever, less those purged)."""
    return int(await owner.fetchval("SELECT count(*) FROM portal_task"))


class WakeUps:
    """Counts the PostgreSQL broker's wake-up messages (``NOTIFY portal_tasks``) while open."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.messages: list[str] = []
        self._connection: asyncpg.Connection | None = None

    async def __aenter__(self) -> WakeUps:
        self._connection = await asyncpg.connect(self.dsn)
        await self._connection.add_listener(QUEUE_CHANNEL, self._heard)
        return self

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        self.messages.append(str(payload))

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            await self._connection.close()
