"""A plugin's scheduled job (the example plugin's ``example.tick``, every second) runs once per interval.

Two production workers run side by side against the test database; the job's row in
``portal_schedule`` is the lease that keeps them from running the same tick twice.
"""

from __future__ import annotations

import asyncio
import itertools

import asyncpg

import support.example_plugin as example
from portal.platform import Platform
from portal.tasks.worker import Worker


async def test_a_plugin_job_runs_once_per_interval_with_two_workers(shared_tenants: Platform) -> None:
    owner = await asyncpg.connect(shared_tenants.settings.database_url)
    try:
        await owner.execute(
            "INSERT INTO portal_schedule (name, next_run_at) VALUES ('example.tick', now()) "
            "ON CONFLICT (name) DO UPDATE SET next_run_at = now(), claimed_by = NULL"
        )
        workers = [Worker(shared_tenants, poll_interval=0.05) for _ in range(2)]
        running = [asyncio.create_task(worker.run()) for worker in workers]
        before = len(example.TICKS)
        await asyncio.sleep(4.5)
        for worker in workers:
            worker.stop()
        await asyncio.gather(*running)
        ticks = example.TICKS[before:]
        row = await owner.fetchrow("SELECT claimed_by, last_error FROM portal_schedule WHERE name = 'example.tick'")
    finally:
        await owner.close()
    # Due at once, then every second: 4 or 5 runs in 4.5 s, never two for one tick.
    assert 4 <= len(ticks) <= 5, ticks
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert row is not None and row["claimed_by"] is None and row["last_error"] is None
