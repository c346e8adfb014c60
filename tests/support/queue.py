"""The PostgreSQL task queue as the tests see it."""

from __future__ import annotations

import asyncpg

from portal.tasks.broker import QUEUE_TABLE


async def queue_table_written(owner: asyncpg.Connection) -> int:
    """How many messages the PostgreSQL queue table ever received (its id sequence; consumers do not lower it)."""
    row = await owner.fetchrow(f"SELECT last_value, is_called FROM {QUEUE_TABLE}_id_seq")
    assert row is not None
    return int(row["last_value"]) if row["is_called"] else 0
