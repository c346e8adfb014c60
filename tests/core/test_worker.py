"""Scheduled jobs: the session sweep visits every ISO, and a worker runs a due job once, then reschedules it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from portal.platform import Platform
from portal.tasks.system import purge_sessions
from portal.tasks.worker import Worker
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


async def test_a_worker_runs_a_due_job_and_schedules_its_next_run(shared_tenants: Platform) -> None:
    harbor = await customer_id("t-apex", "jane@globalco.com")
    owner = await asyncpg.connect(shared_tenants.settings.database_url)
    await _insert_expired(owner, harbor, "scheduled")
    await owner.execute(
        "INSERT INTO portal_schedule (name, next_run_at) VALUES ('portal.purge_sessions', now()) "
        "ON CONFLICT (name) DO UPDATE SET next_run_at = now(), claimed_by = NULL"
    )
    worker = Worker(shared_tenants, poll_interval=0.1)
    running = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 10
        while await owner.fetchval("SELECT count(*) FROM portal_session WHERE id LIKE 'expired-scheduled-%'"):
            if running.done():
                running.result()
                raise AssertionError("the worker stopped before it ran the sweep")
            assert time.monotonic() < deadline, "the worker did not run the due sweep within 10 s"
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 10
        while (row := await owner.fetchrow(
            "SELECT claimed_by, last_error, next_run_at - now() AS wait FROM portal_schedule "
            "WHERE name = 'portal.purge_sessions'"
        )) is None or row["claimed_by"] is not None:  # fmt: skip
            assert time.monotonic() < deadline, "the sweep's run was not recorded within 10 s"
            await asyncio.sleep(0.05)
        assert row["last_error"] is None
        assert timedelta(minutes=4) < row["wait"] <= timedelta(minutes=5), "the next run is one interval later"
    finally:
        worker.stop()
        await running
        await owner.close()
