"""Durable tasks: a PostgreSQL record per task, claimed with a lease, retried with backoff.

A task that must happen (an email, a retry, a renewal) is queued with :func:`queue_task` inside
the transaction that decides it, so it exists exactly when that transaction commits. Workers
claim due rows with ``FOR UPDATE SKIP LOCKED``, pushing ``next_attempt_at`` past a lease and
naming themselves in ``claimed_by``; the outcome is applied only by the claim still holding it
(same ``attempts``). A worker killed without warning gives its claims up when the lease runs
out; a worker that stops hands them back at once (:func:`release_claims`). Broker messages only
wake workers sooner: a lost one delays a task by at most the poll interval.

Tasks are declared with :func:`durable_task`; the run function receives a :class:`TaskRun`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from portal.db.engine import after_commit, current_iso, fetch, json_value, tenant_transaction
from portal.ids import new_id
from portal.metrics import TASK_DURATION, TASKS_FINISHED, TASKS_QUEUED, TASKS_RUNNING
from portal.tasks.wake import kick_worker
from portal.web.input_policy import check_json_value

if TYPE_CHECKING:
    from portal.platform import Platform

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
)
"""Delays before attempts 2, 3, ...; a task fails after its last one."""
CLAIM_BATCH = 20
"""Tasks one worker claims (and runs side by side) from one ISO at a time."""


class TaskRun(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt at a task, as its run function receives it."""

    id: str
    name: str
    iso_id: str
    merchant_id: str | None
    args: dict[str, Any]
    attempt: int
    """1 on the first attempt."""
    final_attempt: bool
    platform: Any
    """The worker's :class:`portal.platform.Platform`."""


TaskFunction = Callable[[TaskRun], Awaitable[None]]


class PermanentTaskError(Exception):
    """Raised by a task that can never succeed (bad arguments, a deleted record): no more attempts."""


@dataclass(frozen=True)
class TaskSpec:
    """A declared task: its name, what it runs and how often it may be tried."""

    name: str
    run: TaskFunction
    retry_delays: tuple[timedelta, ...] = DEFAULT_RETRY_DELAYS
    max_attempts: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_attempts", len(self.retry_delays) + 1)


TASKS: dict[str, TaskSpec] = {}
"""Every declared task by name (filled as task modules are imported)."""


def durable_task(
    name: str, *, retry_delays: tuple[timedelta, ...] = DEFAULT_RETRY_DELAYS
) -> Callable[[TaskFunction], TaskSpec]:
    """Declare ``name`` as a durable task run by the decorated coroutine function."""

    def declare(run: TaskFunction) -> TaskSpec:
        existing = TASKS.get(name)
        if existing is not None and existing.run.__qualname__ != run.__qualname__:
            raise ValueError(f"task {name!r} is declared twice")
        spec = TASKS[name] = TaskSpec(name=name, run=run, retry_delays=retry_delays)
        return spec

    return declare


async def queue_task(
    task: TaskSpec,
    args: Mapping[str, Any] | None = None,
    *,
    merchant_id: str | None = None,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> str | None:
    """Record ``task`` in the current ISO's transaction; a worker runs it once that commits.

    ``args`` must be JSON values (checked like request input: a value that could never be stored
    raises :class:`portal.web.input_policy.InputRefusedError`). ``dedupe_key`` makes queuing
    idempotent per ISO and task name: returns ``None`` when such a task already exists.
    """
    iso_id = current_iso()
    if iso_id is None:
        raise RuntimeError("queue_task runs inside tenant_transaction(iso_id)")
    values = dict(args or {})
    check_json_value({f"{task.name} argument {key}": value for key, value in values.items()})
    task_id = new_id("task")
    rows = await fetch(
        """
        INSERT INTO portal_task (id, iso_id, merchant_id, name, args, dedupe_key, max_attempts, next_attempt_at)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, coalesce($8, now()))
        ON CONFLICT (iso_id, name, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
        RETURNING id
        """,
        task_id, iso_id, merchant_id, task.name, msgspec.json.encode(values).decode(), dedupe_key,
        task.max_attempts, run_at,
    )  # fmt: skip
    if not rows:
        return None
    TASKS_QUEUED.labels(task=task.name).inc()
    after_commit(kick_worker)
    return task_id


# --- running --------------------------------------------------------------------------------


async def run_due_tasks(
    platform: Platform, iso_id: str, worker_id: str, *, limit: int = CLAIM_BATCH, lease: timedelta | None = None
) -> int:
    """Claim up to ``limit`` due tasks of one ISO for ``worker_id``, run them side by side; return how many."""
    lease = lease or timedelta(seconds=platform.settings.task_lease_seconds)
    async with tenant_transaction(iso_id):
        # The due rows are picked once (MATERIALIZED): as ``t.id IN (subquery)`` the planner may
        # run the SKIP LOCKED subquery again per row and claim far more than ``limit`` tasks.
        claimed = await fetch(
            """
            WITH due AS MATERIALIZED (
                SELECT id FROM portal_task
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            UPDATE portal_task t
               SET attempts = t.attempts + 1, next_attempt_at = now() + $2::interval, claimed_by = $3
              FROM due
             WHERE t.id = due.id
            RETURNING t.id, t.name, t.merchant_id, t.args, t.attempts, t.max_attempts
            """,
            limit,
            lease,
            worker_id,
        )
    await asyncio.gather(*(_run_one(platform, iso_id, row) for row in claimed))
    return len(claimed)


async def _run_one(platform: Platform, iso_id: str, row: dict[str, Any]) -> None:
    name, attempts = str(row["name"]), int(row["attempts"])
    spec = TASKS.get(name)
    run = TaskRun(
        id=row["id"],
        name=name,
        iso_id=iso_id,
        merchant_id=row["merchant_id"],
        args=json_value(row["args"]),
        attempt=attempts,
        final_attempt=attempts >= int(row["max_attempts"]),
        platform=platform,
    )
    started = time.monotonic()
    TASKS_RUNNING.labels(task=name).inc()
    try:
        if spec is None:
            raise LookupError(f"task {name} is not installed in this worker")
        await spec.run(run)
    except asyncio.CancelledError:
        TASKS_FINISHED.labels(task=name, outcome="released").inc()
        raise  # the worker is stopping: release_claims hands the task back
    except Exception as exc:
        retry = None if isinstance(exc, PermanentTaskError) or spec is None else _retry_delay(spec, attempts)
        outcome = "failed" if retry is None else "retrying"
        TASKS_FINISHED.labels(task=name, outcome=outcome).inc()
        log.warning("task %s (%s) failed on attempt %s (%s): %s", name, run.id, attempts, outcome, exc)
        await _record(iso_id, run, "failed" if retry is None else "pending", retry, f"{type(exc).__name__}: {exc}")
    else:
        TASKS_FINISHED.labels(task=name, outcome="succeeded").inc()
        await _record(iso_id, run, "succeeded", None, None)
    finally:
        TASKS_RUNNING.labels(task=name).dec()
        TASK_DURATION.labels(task=name).observe(time.monotonic() - started)


def _retry_delay(spec: TaskSpec, attempts: int) -> timedelta | None:
    """Delay before the next attempt after failed attempt number ``attempts``; ``None``: give up."""
    if attempts >= spec.max_attempts:
        return None
    return spec.retry_delays[attempts - 1]


async def _record(iso_id: str, run: TaskRun, status: str, retry: timedelta | None, error: str | None) -> None:
    """Apply an outcome, only if this attempt still holds the claim (retried while the database is away)."""
    await persist(lambda: _apply_outcome(iso_id, run, status, retry, error), f"the outcome of task {run.id}")


RECORD_DELAYS = (0.2, 0.5, *([1.0] * 40))
"""Waits between tries to record an outcome while the database cannot be reached (about 40 s).

Steady, not growing: the outcome must be recorded as soon as the database is back, before the
claim's lease runs out and another worker does the work again."""


async def persist(write: Callable[[], Awaitable[None]], what: str) -> None:
    """Run ``write`` until it succeeds, waiting per :data:`RECORD_DELAYS` while the database is away.

    An outcome that is not recorded means the work is done again after the lease; an email sent
    twice is worse than a worker that waits for PostgreSQL to come back.
    """
    from portal.db.engine import database_unavailable

    for delay in (*RECORD_DELAYS, None):
        try:
            await write()
            return
        except Exception as exc:
            if delay is None or not database_unavailable(exc):
                raise
            log.warning("could not record %s, the database is unavailable; trying again in %g s", what, delay)
            await asyncio.sleep(delay)


async def _apply_outcome(iso_id: str, run: TaskRun, status: str, retry: timedelta | None, error: str | None) -> None:
    async with tenant_transaction(iso_id):
        owned = await fetch(
            """
            UPDATE portal_task
               SET status = $3::text, claimed_by = NULL, last_error = $4,
                   next_attempt_at = CASE WHEN $3::text = 'pending' THEN now() + $5::interval END,
                   done_at = CASE WHEN $3::text = 'pending' THEN NULL ELSE now() END
             WHERE id = $1 AND attempts = $2 AND status = 'pending'
            RETURNING id
            """,
            run.id, run.attempt, status, None if error is None else error[:2000], retry,
        )  # fmt: skip
    if not owned:
        log.warning("task %s: outcome of attempt %s not applied, the claim was lost", run.id, run.attempt)


async def release_claims(iso_ids: set[str], worker_id: str) -> int:
    """Hand back every pending claim of ``worker_id`` in these ISOs (tasks, webhooks, handler runs).

    Released work is due at once and its attempt is not counted; returns how many rows.
    """
    released = 0
    for iso_id in sorted(iso_ids):
        async with tenant_transaction(iso_id):
            for table in ("portal_task", "portal_webhook_delivery", "portal_event_handling"):
                rows = await fetch(
                    f"""
                    UPDATE {table}
                       SET claimed_by = NULL, next_attempt_at = now(), attempts = greatest(attempts - 1, 0)
                     WHERE claimed_by = $1 AND status = 'pending'
                    RETURNING id
                    """,
                    worker_id,
                )
                released += len(rows)
    if released:
        log.info("worker %s handed back %s claimed tasks, webhooks and handler runs", worker_id, released)
    return released


async def purge_finished_tasks(iso_id: str, older_than: timedelta) -> int:
    """Delete this ISO's finished tasks and handler runs older than ``older_than``; return how many tasks."""
    async with tenant_transaction(iso_id):
        rows = await fetch(
            "DELETE FROM portal_task WHERE status <> 'pending' AND done_at < now() - $1::interval RETURNING id",
            older_than,
        )
        await fetch(
            "DELETE FROM portal_event_handling WHERE status = 'succeeded' AND done_at < now() - $1::interval",
            older_than,
        )
    return len(rows)
