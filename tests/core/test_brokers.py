"""``PORTAL_BROKER_URL``: wake-ups flow through PostgreSQL, Redis, NATS and RabbitMQ.

Each test starts a worker process that polls only once an hour, so due work is done promptly
only when a broker message wakes it. A kick from this process must be carried by the broker the
test names (and, where the broker records it, taken by the worker); with any broker but
PostgreSQL, not a single PostgreSQL wake-up may be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from portal.platform import Platform
from portal.tasks.broker import QUEUE_CHANNEL, create_broker
from portal.tasks.wake import process_due_work
from portal.testing import customer_id
from support.queue import WakeUps

ROOT = Path(__file__).parents[2]
BROKERS = {
    "postgresql": None,
    "redis": "redis://127.0.0.1:6379/15",
    "nats": "nats://127.0.0.1:4222",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
}
QUEUE = "portal_tasks"
"""The Redis stream, the NATS stream and the RabbitMQ queue ``create_broker`` uses."""
GROUP = "portal_workers"
"""The Redis consumer group and the NATS durable consumer ``create_broker`` uses."""
EXCHANGE = "taskiq"
"""taskiq-aio-pika's exchange, which ``create_broker`` keeps; the queue is bound to it by its name."""
SWEEP = "portal.purge_sessions"
WAKE = "portal.process_due_work"
WAIT = 60.0
SETTLE = 2.0
"""Seconds the broker must carry nothing new before the test lets work fall due."""


def _task(data: bytes | str) -> tuple[str, str]:
    """The task id and name of a taskiq message as the brokers carry it (JSON)."""
    message = json.loads(data)
    return str(message["task_id"]), str(message["task_name"])


def _carried_problem(carried: dict[str, str], kicked: list[str], where: str) -> str | None:
    """What is missing from ``carried`` (task id to name): one of ``kicked``."""
    missing = [task_id for task_id in kicked if carried.get(task_id) != WAKE]
    if missing:
        return f"the kick(s) {missing} from this process are not in {where} (it carried {carried})"
    return None


class Probe:
    """Looks inside one broker: what it carried since :meth:`open` and whether a worker took it."""

    async def open(self) -> None:
        raise NotImplementedError

    async def problem(self, kicked: list[str]) -> str | None:
        """None once the worker's sweep and every ``kicked`` task went through and were taken."""
        raise NotImplementedError

    async def carried(self) -> int:
        """How many messages the broker carried since :meth:`open` (anyone's: the worker's own kicks too)."""
        raise NotImplementedError

    async def close(self) -> None:
        return None


class PostgresProbe(Probe):
    """The NOTIFY channel: this test listens beside the worker (a wake-up is not stored, so not acknowledged)."""

    def __init__(self, dsn: str) -> None:
        self.wake_ups = WakeUps(dsn)

    async def open(self) -> None:
        await self.wake_ups.__aenter__()

    async def problem(self, kicked: list[str]) -> str | None:
        carried = dict(_task(message) for message in self.wake_ups.messages)
        return _carried_problem(carried, kicked, f"the PostgreSQL channel {QUEUE_CHANNEL}")

    async def carried(self) -> int:
        return len(self.wake_ups.messages)

    async def close(self) -> None:
        await self.wake_ups.__aexit__()


class RedisProbe(Probe):
    """The stream keeps every entry; the consumer group records what was delivered and acknowledged."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self.redis = Redis.from_url(url)
        self.after = "0-0"

    async def open(self) -> None:
        info = await self.redis.xinfo_stream(QUEUE)
        self.after = _text(info["last-generated-id"])

    async def problem(self, kicked: list[str]) -> str | None:
        entries = await self.redis.xrange(QUEUE, min=f"({self.after}", max="+")
        ids = {_task(fields[b"data"])[0]: _text(entry_id) for entry_id, fields in entries}
        carried = dict(_task(fields[b"data"]) for _, fields in entries)
        if problem := _carried_problem(carried, kicked, f"the Redis stream {QUEUE}"):
            return problem
        [group] = [g for g in await self.redis.xinfo_groups(QUEUE) if _text(g["name"]) == GROUP]
        delivered = _entry(_text(group["last-delivered-id"]))
        pending = {
            _text(p["message_id"])
            for p in await self.redis.xpending_range(QUEUE, GROUP, min=f"({self.after}", max="+", count=10_000)
        }
        untaken = [task_id for task_id, entry_id in ids.items() if _entry(entry_id) > delivered or entry_id in pending]
        if untaken:
            return f"entries not yet delivered to {GROUP} and acknowledged: {untaken}"
        return None

    async def carried(self) -> int:
        return len(await self.redis.xrange(QUEUE, min=f"({self.after}", max="+"))

    async def close(self) -> None:
        await self.redis.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(entry_id: str) -> tuple[int, int]:
    milliseconds, sequence = entry_id.split("-")
    return int(milliseconds), int(sequence)


class NatsProbe(Probe):
    """The JetStream stream keeps every message (limits retention); the durable consumer's ack floor."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.before = 0
        self.seen: dict[int, tuple[str, str]] = {}

    async def open(self) -> None:
        import nats

        self.client = await nats.connect(self.url)
        self.stream = self.client.jetstream()
        self.before = (await self.stream.stream_info(QUEUE)).state.last_seq

    async def problem(self, kicked: list[str]) -> str | None:
        last = (await self.stream.stream_info(QUEUE)).state.last_seq
        for sequence in range(self.before + 1, last + 1):
            if sequence not in self.seen:
                self.seen[sequence] = _task((await self.stream.get_msg(QUEUE, sequence)).data or b"")
        carried = dict(self.seen.values())
        if problem := _carried_problem(carried, kicked, f"the JetStream stream {QUEUE}"):
            return problem
        floor = (await self.stream.consumer_info(QUEUE, GROUP)).ack_floor.stream_seq
        untaken = [task for sequence, (task, _) in self.seen.items() if sequence > floor]
        if untaken:
            return f"messages not yet acknowledged by {GROUP} (ack floor {floor}): {untaken}"
        return None

    async def carried(self) -> int:
        return int((await self.stream.stream_info(QUEUE)).state.last_seq) - self.before

    async def close(self) -> None:
        await self.client.close()


class RabbitProbe(Probe):
    """A queue of this test's own, bound like the task queue, receives a copy of every message published."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.carried_messages: dict[str, str] = {}

    async def open(self) -> None:
        import aio_pika

        self.connection = await aio_pika.connect(self.url)
        self.channel = await self.connection.channel()
        self.copies = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await self.copies.bind(EXCHANGE, routing_key=QUEUE)

    async def problem(self, kicked: list[str]) -> str | None:
        while (copy := await self.copies.get(no_ack=True, fail=False)) is not None:
            task_id, name = _task(copy.body)
            self.carried_messages[task_id] = name
        if problem := _carried_problem(self.carried_messages, kicked, f"the RabbitMQ queue {QUEUE}"):
            return problem
        queue = (await self.channel.declare_queue(QUEUE, passive=True)).declaration_result
        if queue.consumer_count < 1:
            return f"no worker consumes the RabbitMQ queue {QUEUE}"
        if queue.message_count:
            return f"{queue.message_count} message(s) still wait in the RabbitMQ queue {QUEUE}"
        return None

    async def carried(self) -> int:
        while (copy := await self.copies.get(no_ack=True, fail=False)) is not None:
            task_id, name = _task(copy.body)
            self.carried_messages[task_id] = name
        return len(self.carried_messages)

    async def close(self) -> None:
        await self.connection.close()


PROBES: dict[str, Callable[[str], Probe]] = {"redis": RedisProbe, "nats": NatsProbe, "rabbitmq": RabbitProbe}


async def insert_expired_session(owner: asyncpg.Connection, session_id: str, customer: str) -> None:
    past = datetime.now(UTC) - timedelta(days=3)
    await owner.execute(
        "INSERT INTO portal_session (id, iso_id, merchant_id, customer_id, created_at, last_seen_at, expires_at) "
        "SELECT $1, iso_id, merchant_id, id, $3, $3, $3 FROM portal_customer WHERE id = $2",
        session_id,
        customer,
        past,
    )


@pytest.mark.parametrize("name", sorted(BROKERS))
async def test_a_worker_process_is_woken_through_each_broker(
    shared_tenants: Platform, name: str, tmp_path: Path
) -> None:
    url = BROKERS[name]
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    log = tmp_path / "worker.log"
    database_url = str(shared_tenants.settings.database_url)
    async with contextlib.AsyncExitStack() as stack:
        owner = await asyncpg.connect(database_url)
        stack.push_async_callback(owner.close)
        settings = msgspec.structs.replace(shared_tenants.settings, broker_url=url)
        broker = create_broker(settings, await shared_tenants.database.app_dsn(), make_default=False)
        await broker.startup()  # declares the stream, consumer group or queue the worker reads
        stack.push_async_callback(broker.shutdown)
        probe = PostgresProbe(database_url) if url is None else PROBES[name](url)
        await probe.open()
        stack.push_async_callback(probe.close)
        wake_ups = await stack.enter_async_context(WakeUps(database_url))

        def postgres_untouched() -> str | None:
            if url is not None and wake_ups.messages:
                return f"{len(wake_ups.messages)} PostgreSQL wake-up(s) were sent although the worker uses {name}"
            return None

        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env["PORTAL_DATABASE_URL"] = database_url
        env["PORTAL_TASK_POLL_INTERVAL"] = "3600"  # only a wake-up makes it look again
        if url:
            env["PORTAL_BROKER_URL"] = url
        started = await owner.fetchval("SELECT now()")
        await _sweep_due(owner)  # the worker's first look runs it
        with log.open("wb") as out:
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "portal.cli", "worker", cwd=ROOT, env=env, stdout=out, stderr=out
            )
        stack.push_async_callback(_stop, worker)

        async def until(check: Callable[[], Awaitable[str | None]], what: str) -> None:
            """Poll ``check`` until it reports no problem; fail at once if PostgreSQL carries a wake-up."""
            deadline = time.monotonic() + WAIT
            while (problem := await check()) is not None:
                if (wrong := postgres_untouched()) is not None:
                    raise AssertionError(f"{wrong}\n{_log(log)}")
                if worker.returncode is not None:
                    raise AssertionError(
                        f"the worker exited ({worker.returncode}) before {what}: {problem}\n{_log(log)}"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {what} within {WAIT:g} s: {problem}\n{_log(log)}")
                await asyncio.sleep(0.1)

        async def first_look_done() -> str | None:
            finished = await owner.fetchval("SELECT last_finished_at FROM portal_schedule WHERE name = $1", SWEEP)
            ready = "worker ready" in _log(log)
            return None if ready and finished is not None and finished > started else "the first look is not done"

        await until(first_look_done, "first look for due work")
        # A wake-up the worker's own first look sent may still be on its way to the worker (a loaded
        # machine delays it): wait until the broker has carried nothing new for a while, so that the
        # look it causes is over before work falls due.
        carried_before = await probe.carried()
        settled_at = time.monotonic()
        give_up = settled_at + WAIT
        while time.monotonic() - settled_at < SETTLE:
            assert time.monotonic() < give_up, f"{name} kept carrying wake-ups\n{_log(log)}"
            await asyncio.sleep(0.1)
            if (carried_now := await probe.carried()) != carried_before:
                carried_before, settled_at = carried_now, time.monotonic()
        # Now work falls due, and nothing looks for it until a wake-up comes through the broker.
        session_id = f"broker-{name}-{jane}"
        await insert_expired_session(owner, session_id, jane)
        await _sweep_due(owner)
        await asyncio.sleep(1.0)
        if not await _session_left(owner, session_id):  # only a wake-up (the worker's own work kicks too) explains it
            # The probe's copy of that wake-up may arrive a moment after the work was done.
            for _ in range(50):
                if await probe.carried() > carried_before:
                    break
                await asyncio.sleep(0.1)
            assert await probe.carried() > carried_before, f"the worker found the work without a wake-up\n{_log(log)}"
        kicked = [(await process_due_work.kicker().with_broker(broker).kiq()).task_id]

        async def purged() -> str | None:
            return (
                f"the expired session {session_id} is still there" if await _session_left(owner, session_id) else None
            )

        await until(purged, f"sweep after a wake-up through {name}")
        await until(lambda: probe.problem(kicked), f"wake-up carried by {name} and taken")
        await _stop(worker)
        assert worker.returncode == 0, _log(log)
        untouched = postgres_untouched()
        assert untouched is None, f"{untouched}\n{_log(log)}"


async def _sweep_due(owner: asyncpg.Connection) -> None:
    await owner.execute(
        "INSERT INTO portal_schedule (name, next_run_at) VALUES ($1, now()) "
        "ON CONFLICT (name) DO UPDATE SET next_run_at = now()",
        SWEEP,
    )


async def _session_left(owner: asyncpg.Connection, session_id: str) -> bool:
    return bool(await owner.fetchval("SELECT count(*) FROM portal_session WHERE id = $1", session_id))


def _log(log: Path) -> str:
    return log.read_text(errors="replace")


async def _stop(worker: asyncio.subprocess.Process) -> None:
    """SIGTERM, as a service manager stops it; killed if it has not stopped within 30 s."""
    if worker.returncode is None:
        worker.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(worker.wait(), 30)
    except TimeoutError:
        worker.kill()
        await worker.wait()
