"""The worker: the PostgreSQL broker delivers the session sweep, which visits every ISO."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from portal.platform import Platform
from portal.tasks.broker import QUEUE_TABLE
from portal.tasks.system import purge_sessions
from portal.tasks.worker import run_worker
from portal.testing import customer_id
from support.queue import queue_table_written


async def _old_sessions(owner: asyncpg.Connection, *customers: str) -> int:
    return int(await owner.fetchval("SELECT count(*) FROM portal_session WHERE customer_id = ANY($1)", list(customers)))


async def _insert_expired(owner: asyncpg.Connection, customer: str, suffix: str) -> None:
    past = datetime.now(UTC) - timedelta(days=3)
    await owner.execute(
        """
        INSERT INTO portal_session (id, iso_id, merchant_id, customer_id, created_at, last_seen_at, expires_at)
        SELECT $1, iso_id, merchant_id, id, $3, $3, $3 FROM portal_customer WHERE id = $2
        """,
        f"expired-{suffix}-{customer}",
        customer,
        past,
    )


async def test_purge_visits_each_iso_in_turn(shared_tenants: Platform) -> None:
    harbor = await customer_id("t-greenfield", "jane@globalco.com")
    summit = await customer_id("t-northwind", "jane@globalco.com")
    owner = await asyncpg.connect(shared_tenants.settings.database_url)
    try:
        await _insert_expired(owner, harbor, "direct")
        await _insert_expired(owner, summit, "direct")
        assert await _old_sessions(owner, harbor, summit) >= 2
        removed = await purge_sessions()
        assert removed >= 2
        assert await owner.fetchval("SELECT count(*) FROM portal_session WHERE id LIKE 'expired-direct-%'") == 0
    finally:
        await owner.close()


async def test_the_worker_runs_sweeps_through_the_broker(shared_tenants: Platform) -> None:
    harbor = await customer_id("t-apex", "jane@globalco.com")
    owner = await asyncpg.connect(shared_tenants.settings.database_url)
    await _insert_expired(owner, harbor, "broker")
    written = await queue_table_written(owner)
    worker = asyncio.create_task(run_worker(shared_tenants, sweep_interval=3600))
    try:
        deadline = time.monotonic() + 10
        while await owner.fetchval("SELECT count(*) FROM portal_session WHERE id LIKE 'expired-broker-%'"):
            if worker.done():
                worker.result()
                raise AssertionError("the worker stopped before it ran the sweep")
            assert time.monotonic() < deadline, "the worker did not run the sweep within 10 s"
            await asyncio.sleep(0.05)
        # The sweep travelled as a message through the PostgreSQL queue, which the worker took and
        # acknowledged (acknowledged messages are deleted).
        assert await queue_table_written(owner) > written, f"nothing went through {QUEUE_TABLE}"
        deadline = time.monotonic() + 10
        while left := await owner.fetch(f"SELECT id, task_name, status FROM {QUEUE_TABLE} WHERE id > $1", written):
            assert time.monotonic() < deadline, f"messages not acknowledged within 10 s: {[dict(r) for r in left]}"
            await asyncio.sleep(0.05)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await owner.close()
