"""Durable tasks: a PostgreSQL record per task, claimed with a lease, retried with backoff.

A task that must happen (an email, a retry, a renewal) is queued with :func:`queue_task` inside
the transaction that decides it, so it exists exactly when that transaction commits. Workers
claim due rows with ``FOR UPDATE SKIP LOCKED``, pushing ``next_attempt_at`` past a lease and
naming themselves in ``claimed_by``; the outcome is applied only by the claim still holding it
(same ``attempts``). A worker killed without warning gives its claims up when the lease runs
out; a worker that stops hands them back at once (:func:`release_claims`). Broker messages only
wake workers sooner: a lost one delays a task by at most the poll interval.

Tasks are declared with :func:`durable_task`; the run function receives a :class:`TaskRun`. A
task with much work of one kind (renewals, charges) may be declared with
:func:`durable_batch_task` instead: its function receives the runs claimed together, does them in
as few transactions as it can, and answers one outcome per run; the outcomes are recorded in one
statement.
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
CLAIM_BATCH = 100
"""Tasks one worker claims from one ISO at a time."""
SIDE_BY_SIDE = 20
"""Tasks (or batches) of one claim that run at the same time."""
BATCH_SIZE = 25
"""Runs of one batch task handed to its function together."""


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
BatchFunction = Callable[[list[TaskRun]], Awaitable[list[BaseException | None]]]
"""Runs of one task (same ISO) to the outcome of each, in order: ``None`` done, else what failed it."""


class PermanentTaskError(Exception):
    """Raised by a task that can never succeed (bad arguments, a deleted record): no more attempts."""


@dataclass(frozen=True)
class TaskSpec:
    """A declared task: its name, what it runs and how often it may be tried."""

    name: str
    run: TaskFunction
    retry_delays: tuple[timedelta, ...] = DEFAULT_RETRY_DELAYS
    run_batch: BatchFunction | None = None
    """Set for :func:`durable_batch_task`: what runs the runs claimed together."""
    max_attempts: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_attempts", len(self.retry_delays) + 1)


TASKS: dict[str, TaskSpec] = {}
"""Every declared task by name (filled as task modules are imported)."""


def _declare(spec: TaskSpec) -> TaskSpec:
    existing = TASKS.get(spec.name)
    function = spec.run_batch or spec.run
    if existing is not None and (existing.run_batch or existing.run).__qualname__ != function.__qualname__:
        raise ValueError(f"task {spec.name!r} is declared twice")
    TASKS[spec.name] = spec
    return spec


def durable_task(
    name: str, *, retry_delays: tuple[timedelta, ...] = DEFAULT_RETRY_DELAYS
) -> Callable[[TaskFunction], TaskSpec]:
    """Declare ``name`` as a durable task run by the decorated coroutine function."""

    def declare(run: TaskFunction) -> TaskSpec:
        return _declare(TaskSpec(name=name, run=run, retry_delays=retry_delays))

    return declare


def durable_batch_task(
    name: str, *, retry_delays: tuple[timedelta, ...] = DEFAULT_RETRY_DELAYS
) -> Callable[[BatchFunction], TaskSpec]:
    """Declare ``name`` as a durable task whose runs claimed together go to the decorated function at once.

    The function receives up to :data:`BATCH_SIZE` runs of one ISO and returns one outcome per
    run, in order (``None`` for done, the exception otherwise: a :class:`PermanentTaskError`
    ends the task, anything else is retried on its schedule). Each run stays its own task:
    queued, deduplicated, retried and recorded one by one. :func:`portal.db.batch.in_one_transaction`
    is the usual body.
    """

    def declare(run_batch: BatchFunction) -> TaskSpec:
        async def run(run: TaskRun) -> None:
            (outcome,) = await run_batch([run])
            if outcome is not None:
                raise outcome

        return _declare(TaskSpec(name=name, run=run, retry_delays=retry_delays, run_batch=run_batch))

    return declare


class TaskToQueue(msgspec.Struct, frozen=True, kw_only=True):
    """One task for :func:`queue_tasks`: its arguments and :func:`queue_task`'s options."""

    args: dict[str, Any]
    merchant_id: str | None = None
    run_at: datetime | None = None
    dedupe_key: str | None = None


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
    item = TaskToQueue(args=dict(args or {}), merchant_id=merchant_id, run_at=run_at, dedupe_key=dedupe_key)
    (queued,) = await queue_tasks(task, [item])
    return queued


async def queue_tasks(task: TaskSpec, items: list[TaskToQueue]) -> list[str | None]:
    """:func:`queue_task` for many runs of one task in one statement; per item its id, or ``None`` (deduplicated)."""
    iso_id = current_iso()
    if iso_id is None:
        raise RuntimeError("queue_task runs inside tenant_transaction(iso_id)")
    if not items:
        return []
    for item in items:
        check_json_value({f"{task.name} argument {key}": value for key, value in item.args.items()})
    ids = [new_id("task") for _ in items]
    rows = await fetch(
        """
        INSERT INTO portal_task (id, iso_id, merchant_id, name, args, dedupe_key, max_attempts, next_attempt_at)
        SELECT id, $1, merchant_id, $2, args, dedupe_key, $3, coalesce(run_at, now())
          FROM unnest($4::text[], $5::text[], $6::jsonb[], $7::text[], $8::timestamptz[])
               AS q(id, merchant_id, args, dedupe_key, run_at)
        ON CONFLICT (iso_id, name, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
        RETURNING id
        """,
        iso_id, task.name, task.max_attempts, ids, [item.merchant_id for item in items],
        [msgspec.json.encode(item.args).decode() for item in items], [item.dedupe_key for item in items],
        [item.run_at for item in items],
    )  # fmt: skip
    queued = {row["id"] for row in rows}
    if queued:
        TASKS_QUEUED.labels(task=task.name).inc(len(queued))
        after_commit(kick_worker)
    return [task_id if task_id in queued else None for task_id in ids]


# --- running --------------------------------------------------------------------------------


async def run_due_tasks(
    platform: Platform, iso_id: str, worker_id: str, *, limit: int = CLAIM_BATCH, lease: timedelta | None = None
) -> int:
    """Claim up to ``limit`` due tasks of one ISO for ``worker_id`` and run them; return how many.

    Up to :data:`SIDE_BY_SIDE` run at once: each task alone, or the runs of a batch task, per
    merchant, in batches of up to :data:`BATCH_SIZE`.
    """
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
    singles: list[TaskRun] = []
    batches: dict[tuple[str, str | None], list[TaskRun]] = {}
    for row in claimed:
        run = _task_run(platform, iso_id, row)
        spec = TASKS.get(run.name)
        if spec is not None and spec.run_batch is not None:
            # One merchant per batch: a batch holds its merchant's audit chain until it commits,
            # so batches of different merchants run side by side.
            batches.setdefault((run.name, run.merchant_id), []).append(run)
        else:
            singles.append(run)
    slots = asyncio.Semaphore(SIDE_BY_SIDE)

    async def limited(work: Awaitable[None]) -> None:
        async with slots:
            await work

    await asyncio.gather(
        *(limited(_run_one(iso_id, run)) for run in singles),
        *(
            limited(_run_batch(iso_id, TASKS[name], runs[start : start + BATCH_SIZE]))
            for (name, _merchant), runs in batches.items()
            for start in range(0, len(runs), BATCH_SIZE)
        ),
    )
    return len(claimed)


async def run_claimed(platform: Platform, iso_id: str, row: dict[str, Any]) -> None:
    """Run one task its caller claimed (a ``portal_task`` row as claimed) and record its outcome, as a worker does."""
    await _run_one(iso_id, _task_run(platform, iso_id, row))


def _task_run(platform: Platform, iso_id: str, row: dict[str, Any]) -> TaskRun:
    attempts = int(row["attempts"])
    return TaskRun(
        id=row["id"],
        name=str(row["name"]),
        iso_id=iso_id,
        merchant_id=row["merchant_id"],
        args=json_value(row["args"]),
        attempt=attempts,
        final_attempt=attempts >= int(row["max_attempts"]),
        platform=platform,
    )


async def _run_one(iso_id: str, run: TaskRun) -> None:
    name = run.name
    spec = TASKS.get(name)
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
        outcome = _failure(spec, run, exc)
        await _record(iso_id, [outcome])
    else:
        TASKS_FINISHED.labels(task=name, outcome="succeeded").inc()
        await _record(iso_id, [Outcome(run, "succeeded", None, None)])
    finally:
        TASKS_RUNNING.labels(task=name).dec()
        TASK_DURATION.labels(task=name).observe(time.monotonic() - started)


async def _run_batch(iso_id: str, spec: TaskSpec, runs: list[TaskRun]) -> None:
    assert spec.run_batch is not None
    name = spec.name
    started = time.monotonic()
    TASKS_RUNNING.labels(task=name).inc(len(runs))
    try:
        try:
            results = await spec.run_batch(runs)
            if len(results) != len(runs):
                raise RuntimeError(f"task {name} answered {len(results)} outcomes for {len(runs)} runs")
        except asyncio.CancelledError:
            TASKS_FINISHED.labels(task=name, outcome="released").inc(len(runs))
            raise
        except Exception as exc:
            results = [exc] * len(runs)
        outcomes = []
        for run, result in zip(runs, results, strict=True):
            if result is None:
                TASKS_FINISHED.labels(task=name, outcome="succeeded").inc()
                outcomes.append(Outcome(run, "succeeded", None, None))
            else:
                outcomes.append(_failure(spec, run, result))
        await _record(iso_id, outcomes)
    finally:
        TASKS_RUNNING.labels(task=name).dec(len(runs))
        elapsed = time.monotonic() - started
        for _ in runs:
            TASK_DURATION.labels(task=name).observe(elapsed / len(runs))


@dataclass(frozen=True)
class Outcome:
    """What became of one run: the task's next status, the delay before a retry, the error."""

    run: TaskRun
    status: str
    retry: timedelta | None
    error: str | None


def _failure(spec: TaskSpec | None, run: TaskRun, exc: BaseException) -> Outcome:
    retry = None if isinstance(exc, PermanentTaskError) or spec is None else _retry_delay(spec, run.attempt)
    outcome = "failed" if retry is None else "retrying"
    TASKS_FINISHED.labels(task=run.name, outcome=outcome).inc()
    log.warning("task %s (%s) failed on attempt %s (%s): %s", run.name, run.id, run.attempt, outcome, exc)
    return Outcome(run, "failed" if retry is None else "pending", retry, f"{type(exc).__name__}: {exc}")


def _retry_delay(spec: TaskSpec, attempts: int) -> timedelta | None:
    """Delay before the next attempt after failed attempt number ``attempts``; ``None``: give up."""
    if attempts >= spec.max_attempts:
        return None
    return spec.retry_delays[attempts - 1]


async def _record(iso_id: str, outcomes: list[Outcome]) -> None:
    """Apply outcomes, each only if its attempt still holds the claim (retried while the database is away)."""
    what = f"the outcome of task {outcomes[0].run.id}" if len(outcomes) == 1 else f"{len(outcomes)} task outcomes"
    await persist(lambda: _apply_outcomes(iso_id, outcomes), what)


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


async def _apply_outcomes(iso_id: str, outcomes: list[Outcome]) -> None:
    # The rows are found by primary key. "Still pending" reads ``next_attempt_at IS NOT NULL``
    # (the same thing, by the table's check): written as ``status = 'pending'``, it let a planner
    # whose statistics predate a burst of tasks read every pending row of the ISO through the
    # partial due indexes, for each batch of outcomes.
    async with tenant_transaction(iso_id):
        owned = await fetch(
            """
            UPDATE portal_task t
               SET status = o.status, claimed_by = NULL, last_error = o.error,
                   next_attempt_at = CASE WHEN o.status = 'pending' THEN now() + o.retry END,
                   done_at = CASE WHEN o.status = 'pending' THEN NULL ELSE now() END
              FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::interval[])
                   AS o(id, attempts, status, error, retry)
             WHERE t.id = ANY($1::text[]) AND t.id = o.id AND t.attempts = o.attempts
               AND t.next_attempt_at IS NOT NULL
            RETURNING t.id
            """,
            [outcome.run.id for outcome in outcomes], [outcome.run.attempt for outcome in outcomes],
            [outcome.status for outcome in outcomes],
            [None if outcome.error is None else outcome.error[:2000] for outcome in outcomes],
            [outcome.retry for outcome in outcomes],
        )  # fmt: skip
    applied = {row["id"] for row in owned}
    for lost in (outcome.run for outcome in outcomes if outcome.run.id not in applied):
        log.warning("task %s: outcome of attempt %s not applied, the claim was lost", lost.id, lost.attempt)


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
