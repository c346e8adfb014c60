"""The worker: the PostgreSQL broker delivers the session sweep, which visits every ISO."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from portal.platform import Platform
from portal.tasks.system import purge_sessions
from portal.tasks.worker import run_worker
from portal.testing import customer_id


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
    worker = asyncio.create_task(run_worker(shared_tenants, sweep_interval=3600))
    try:
        await _insert_expired(owner, harbor, "broker")
        for _ in range(100):
            await asyncio.sleep(0.1)
            if not await owner.fetchval("SELECT count(*) FROM portal_session WHERE id LIKE 'expired-broker-%'"):
                break
        assert await owner.fetchval("SELECT count(*) FROM portal_session WHERE id LIKE 'expired-broker-%'") == 0
        # The sweep travelled as a message through the PostgreSQL queue (acknowledged messages are removed).
        assert await owner.fetchval("SELECT is_called FROM portal_queue.taskiq_messages_id_seq") is True
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await owner.close()
