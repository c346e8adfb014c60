"""Durable tasks: a row per task, written with its transaction, claimed with a lease, retried, handed back.

The tasks here are the test's own, declared like any task; workers are the production
:class:`portal.tasks.worker.Worker` against the test database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from portal.db.engine import tenant_transaction
from portal.platform import Platform
from portal.tasks.durable import PermanentTaskError, TaskRun, durable_batch_task, durable_task, queue_task
from portal.tasks.pg_broker import PostgresWakeBroker
from portal.tasks.worker import Worker

RAN: dict[str, list[int]] = {}
"""Attempts each test task saw, by its ``key`` argument."""
HOLD = asyncio.Event()
STARTED: set[str] = set()
FAST = (timedelta(milliseconds=50), timedelta(milliseconds=50))


@durable_task("tests.record")
async def record(task: TaskRun) -> None:
    RAN.setdefault(task.args["key"], []).append(task.attempt)


@durable_task("tests.flaky", retry_delays=FAST)
async def flaky(task: TaskRun) -> None:
    RAN.setdefault(task.args["key"], []).append(task.attempt)
    if task.attempt <= task.args["failures"]:
        raise ConnectionError(f"try {task.attempt} failed")


@durable_task("tests.refused", retry_delays=FAST)
async def refused(task: TaskRun) -> None:
    RAN.setdefault(task.args["key"], []).append(task.attempt)
    raise PermanentTaskError("this can never work")


@durable_task("tests.hold")
async def hold(task: TaskRun) -> None:
    STARTED.add(task.args["key"])
    await HOLD.wait()
    RAN.setdefault(task.args["key"], []).append(task.attempt)


BATCHES: list[list[str]] = []
"""The keys of each call of the batch task, in call order."""


@durable_batch_task("tests.batch", retry_delays=FAST)
async def batch(runs: list[TaskRun]) -> list[BaseException | None]:
    BATCHES.append([run.args["key"] for run in runs])
    outcomes: list[BaseException | None] = []
    for run in runs:
        RAN.setdefault(run.args["key"], []).append(run.attempt)
        failures = run.args.get("failures", 0)
        if failures == "never works":
            outcomes.append(PermanentTaskError("this one can never work"))
        elif run.attempt <= failures:
            outcomes.append(ConnectionError(f"try {run.attempt} failed"))
        else:
            outcomes.append(None)
    return outcomes


@pytest_asyncio.fixture(loop_scope="session")
async def owner(shared_tenants: Platform) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(shared_tenants.settings.database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest_asyncio.fixture(loop_scope="session")
async def merchant(shared_tenants: Platform) -> Any:
    tenant = await shared_tenants.tenants.resolve("t-greenfield.portal.localhost")
    assert tenant is not None
    return tenant.merchant


async def queue(merchant: Any, task: Any, key: str, **args: Any) -> str:
    async with tenant_transaction(merchant.iso_id):
        queued = await queue_task(task, {"key": key, **args}, merchant_id=merchant.id, **_options(args))
    assert queued is not None
    return queued


def _options(args: dict[str, Any]) -> dict[str, Any]:
    return {name: args.pop(name) for name in ("run_at", "dedupe_key") if name in args}


async def row(owner: asyncpg.Connection, task_id: str) -> dict[str, Any]:
    found = await owner.fetchrow("SELECT * FROM portal_task WHERE id = $1", task_id)
    assert found is not None
    return dict(found)


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:g} s"
        await asyncio.sleep(0.05)


class Running:
    """A started worker; stopped (gracefully) at the end of the block."""

    def __init__(self, platform: Platform, grace: float = 5.0) -> None:
        self.worker = Worker(platform, poll_interval=0.1, grace=grace)

    async def __aenter__(self) -> Worker:
        self.task = asyncio.create_task(self.worker.run())
        return self.worker

    async def __aexit__(self, *_: object) -> None:
        self.worker.stop()
        await self.task


async def test_a_task_exists_only_if_the_transaction_that_queued_it_commits(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with tenant_transaction(merchant.iso_id):
            await queue_task(record, {"key": "rolled-back"}, merchant_id=merchant.id)
            raise RuntimeError("changed my mind")
    assert await owner.fetchval("SELECT count(*) FROM portal_task WHERE args->>'key' = 'rolled-back'") == 0
    task_id = await queue(merchant, record, "committed")
    queued = await row(owner, task_id)
    assert (queued["status"], queued["attempts"], queued["claimed_by"]) == ("pending", 0, None)
    assert (queued["iso_id"], queued["merchant_id"], queued["name"]) == (merchant.iso_id, merchant.id, "tests.record")
    with pytest.raises(RuntimeError, match="tenant_transaction"):
        await queue_task(record, {"key": "outside"})


async def test_a_task_queued_while_no_worker_runs_is_run_once_by_a_worker_started_later(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    task_id = await queue(merchant, record, "later")
    await asyncio.sleep(0.3)
    assert "later" not in RAN
    async with Running(shared_tenants):
        await until(lambda: _status(owner, task_id, "succeeded"), "the task")
    done = await row(owner, task_id)
    assert RAN["later"] == [1]
    assert (done["attempts"], done["claimed_by"], done["next_attempt_at"]) == (1, None, None)
    assert done["done_at"] is not None


async def test_a_failing_task_is_retried_with_backoff_until_it_succeeds(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    task_id = await queue(merchant, flaky, "flaky-2", failures=2)
    async with Running(shared_tenants):
        await until(lambda: _status(owner, task_id, "succeeded"), "the third try")
    assert RAN["flaky-2"] == [1, 2, 3]
    assert (await row(owner, task_id))["last_error"] is None


async def test_a_task_failing_every_try_fails_after_its_last_attempt_with_the_error_kept(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    task_id = await queue(merchant, flaky, "flaky-always", failures=99)
    async with Running(shared_tenants):
        await until(lambda: _status(owner, task_id, "failed"), "the last try")
    failed = await row(owner, task_id)
    assert RAN["flaky-always"] == [1, 2, 3]  # two retry delays: three attempts
    assert failed["attempts"] == 3 and failed["next_attempt_at"] is None
    assert failed["last_error"] == "ConnectionError: try 3 failed"


async def test_a_permanent_error_fails_the_task_at_once(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    task_id = await queue(merchant, refused, "refused")
    async with Running(shared_tenants):
        await until(lambda: _status(owner, task_id, "failed"), "the refusal")
    assert RAN["refused"] == [1]
    assert (await row(owner, task_id))["last_error"] == "PermanentTaskError: this can never work"


async def test_runs_of_a_batch_task_claimed_together_reach_it_at_once_and_end_one_by_one(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    keys = {"batch-ok": 0, "batch-flaky": 1, "batch-refused": "never works"}
    async with tenant_transaction(merchant.iso_id):
        ids = {
            key: await queue_task(batch, {"key": key, "failures": failures}, merchant_id=merchant.id)
            for key, failures in keys.items()
        }
    async with Running(shared_tenants):
        await until(lambda: _status(owner, str(ids["batch-flaky"]), "succeeded"), "the flaky run's retry")
        await until(lambda: _status(owner, str(ids["batch-ok"]), "succeeded"), "the good run")
        await until(lambda: _status(owner, str(ids["batch-refused"]), "failed"), "the refused run")
    first = next(call for call in BATCHES if "batch-ok" in call)
    assert sorted(first) == sorted(keys)  # claimed together: one call
    assert RAN["batch-ok"] == [1] and RAN["batch-refused"] == [1]
    assert RAN["batch-flaky"] == [1, 2]  # retried alone, on its own schedule
    assert (await row(owner, str(ids["batch-ok"])))["last_error"] is None
    assert (await row(owner, str(ids["batch-refused"])))["last_error"] == (
        "PermanentTaskError: this one can never work"
    )


async def test_a_batch_task_run_alone_raises_its_outcome(shared_tenants: Platform, merchant: Any) -> None:
    run = TaskRun(
        id="task_alone", name="tests.batch", iso_id=merchant.iso_id, merchant_id=merchant.id,
        args={"key": "batch-alone", "failures": 5}, attempt=1, final_attempt=False, platform=shared_tenants,
    )  # fmt: skip
    with pytest.raises(ConnectionError, match="try 1 failed"):
        await batch.run(run)
    assert BATCHES[-1] == ["batch-alone"]


async def test_a_dedupe_key_queues_a_task_once(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    async with tenant_transaction(merchant.iso_id):
        first = await queue_task(record, {"key": "dedupe"}, merchant_id=merchant.id, dedupe_key="invoice-42")
        second = await queue_task(record, {"key": "dedupe"}, merchant_id=merchant.id, dedupe_key="invoice-42")
    assert first is not None and second is None
    count = "SELECT count(*) FROM portal_task WHERE dedupe_key = 'invoice-42' AND iso_id = $1"
    assert await owner.fetchval(count, merchant.iso_id) == 1


async def test_a_task_due_later_waits_for_its_time(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    task_id = await queue(merchant, record, "later-on", run_at=datetime.now(UTC) + timedelta(seconds=1))
    async with Running(shared_tenants):
        await asyncio.sleep(0.5)
        assert "later-on" not in RAN
        await until(lambda: _status(owner, task_id, "succeeded"), "the task at its time")


async def test_the_claim_of_a_worker_killed_without_warning_is_taken_over_after_its_lease(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    task_id = await queue(merchant, record, "orphan")
    # What a claim by a worker that was then killed leaves behind: one attempt, a lease, its name.
    await owner.execute(
        "UPDATE portal_task SET attempts = 1, next_attempt_at = now() + interval '1 second', claimed_by = 'gone:1:x' "
        "WHERE id = $1",
        task_id,
    )
    async with Running(shared_tenants):
        await asyncio.sleep(0.5)
        assert "orphan" not in RAN, "taken while the lease still held"
        await until(lambda: _status(owner, task_id, "succeeded"), "the take-over after the lease")
    assert RAN["orphan"] == [2]


async def test_stop_hands_back_running_work_at_once_without_counting_the_attempt(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    HOLD.clear()
    task_id = await queue(merchant, hold, "held")
    running = Running(shared_tenants, grace=0.2)
    worker = await running.__aenter__()
    await until(lambda: _true("held" in STARTED), "the start of the held task")
    claimed = await row(owner, task_id)
    assert claimed["claimed_by"] == worker.id and claimed["attempts"] == 1
    stopped_at = time.monotonic()
    await running.__aexit__()
    assert time.monotonic() - stopped_at < 3, "stop took longer than its grace period and the hand-back"
    handed_back = await row(owner, task_id)
    assert handed_back["status"] == "pending" and handed_back["claimed_by"] is None
    assert handed_back["attempts"] == 0
    assert await owner.fetchval("SELECT next_attempt_at <= now() FROM portal_task WHERE id = $1", task_id)
    HOLD.set()
    async with Running(shared_tenants):  # the next worker takes it at once
        await until(lambda: _status(owner, task_id, "succeeded"), "the take-over", seconds=5)
    assert RAN["held"] == [1]


async def test_stop_lets_work_finish_within_the_grace_period(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    HOLD.clear()
    task_id = await queue(merchant, hold, "graceful")
    running = Running(shared_tenants, grace=10)
    await running.__aenter__()
    await until(lambda: _true("graceful" in STARTED), "the start of the task")
    asyncio.get_running_loop().call_later(0.3, HOLD.set)
    await running.__aexit__()
    assert RAN["graceful"] == [1]
    assert (await row(owner, task_id))["status"] == "succeeded"


async def test_health_reports_the_age_of_the_oldest_due_work(
    shared_tenants: Platform, merchant: Any, owner: asyncpg.Connection
) -> None:
    task_id = await queue(merchant, record, "overdue", run_at=datetime.now(UTC) - timedelta(minutes=10))
    worker = Worker(shared_tenants)  # not running: nothing takes the task
    health = await worker.health()
    assert health["oldest_due_task_age_seconds"] >= 600
    assert health["due"]["task"] >= 1
    assert "broker: the receiver is not running" in health["problems"] and health["status"] == "degraded"
    await owner.execute("UPDATE portal_task SET status = 'cancelled', next_attempt_at = NULL WHERE id = $1", task_id)


async def test_the_wake_up_listener_reconnects_after_its_connection_is_killed(
    shared_tenants: Platform, owner: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = await shared_tenants.database.app_dsn()
    broker = PostgresWakeBroker(dsn, "tests_wake_reconnect")
    broker.is_worker_process = True
    connections: list[float] = []
    broker.on_listening = lambda: connections.append(time.monotonic())
    caplog.set_level(logging.INFO, logger="portal.db.listener")
    await broker.startup()
    try:
        assert broker.connected and len(connections) == 1
        killed = await owner.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN %tests_wake_reconnect%'"
        )
        assert killed == 1
        await until(lambda: _true(len(connections) == 2 and broker.connected), "the reconnection")
        await owner.execute("NOTIFY tests_wake_reconnect, 'hello'")
        heard = await asyncio.wait_for(anext(broker.listen()), 5)
        assert heard == b"hello"
    finally:
        await broker.shutdown()
    messages = [r.getMessage() for r in caplog.records if r.name == "portal.db.listener"]
    assert any("was lost; reconnecting" in m for m in messages), messages
    assert any("listening again after" in m for m in messages), messages


async def _status(owner: asyncpg.Connection, task_id: str, status: str) -> bool:
    return bool(await owner.fetchval("SELECT status = $2 FROM portal_task WHERE id = $1", task_id, status))


async def _true(value: bool) -> bool:
    return value
