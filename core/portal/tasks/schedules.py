"""Scheduled jobs (sweeps): one ``portal_schedule`` row per job, run by one worker at a time.

A worker claims a due job with ``FOR UPDATE SKIP LOCKED``, pushing ``next_run_at`` past a
lease; when the job ends, the next run is set ``every`` later. A worker killed mid-run leaves
the job to run again once the lease is over; a worker that stops hands it back at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from portal.db.engine import fetch, system_transaction
from portal.plugin import ScheduledJob
from portal.tasks.durable import persist

if TYPE_CHECKING:
    from portal.platform import Platform

log = logging.getLogger(__name__)

JobFunction = Callable[["Platform"], Awaitable[object]]

SCHEDULES: dict[str, ScheduledJob] = {}
"""Core's scheduled jobs by name (plugins declare theirs with ``portal_scheduled_jobs``)."""


def scheduled(name: str, *, every: timedelta) -> Callable[[JobFunction], JobFunction]:
    """Declare the decorated coroutine function (taking the platform) as core job ``name``, run every ``every``."""

    def declare(run: JobFunction) -> JobFunction:
        SCHEDULES[name] = ScheduledJob(name=name, every=every, run=run)
        return run

    return declare


def all_jobs(platform: Platform) -> dict[str, ScheduledJob]:
    """Core's jobs and those of every loaded plugin."""
    return {**SCHEDULES, **platform.registry.scheduled_jobs}


async def ensure_schedules(names: list[str]) -> None:
    """Give each job a row (a new job is due at once); existing rows keep their times."""
    async with system_transaction():
        await fetch("INSERT INTO portal_schedule (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING", names)


async def run_due_schedules(platform: Platform, worker_id: str, lease: timedelta) -> int:
    """Run every job that is due and not held by another worker, one after another; return how many ran."""
    jobs = all_jobs(platform)
    ran = 0
    while True:
        async with system_transaction():
            rows = await fetch(
                """
                WITH due AS MATERIALIZED (  -- picked once: one job per claim
                    SELECT name FROM portal_schedule
                     WHERE name = ANY($1::text[]) AND next_run_at <= now()
                     ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                UPDATE portal_schedule s
                   SET next_run_at = now() + $2::interval, claimed_by = $3, last_started_at = now()
                  FROM due
                 WHERE s.name = due.name
                RETURNING s.name
                """,
                sorted(jobs),
                lease,
                worker_id,
            )
        if not rows:
            return ran
        job = jobs[rows[0]["name"]]
        error: str | None = None
        try:
            await job.run(platform)
        except Exception as exc:
            log.exception("scheduled job %s failed", job.name)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        await persist(partial(_finish, job, worker_id, error), f"the run of job {job.name}")
        ran += 1


async def _finish(job: ScheduledJob, worker_id: str, error: str | None) -> None:
    async with system_transaction():
        await fetch(
            """
            UPDATE portal_schedule
               SET next_run_at = now() + $2::interval, claimed_by = NULL, last_finished_at = now(), last_error = $3
             WHERE name = $1 AND claimed_by = $4
            """,
            job.name, job.every, error, worker_id,
        )  # fmt: skip


async def release_schedules(worker_id: str) -> None:
    """Hand back the jobs ``worker_id`` holds: due again at once."""
    async with system_transaction():
        await fetch(
            "UPDATE portal_schedule SET next_run_at = now(), claimed_by = NULL WHERE claimed_by = $1", worker_id
        )
