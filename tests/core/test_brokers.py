"""``PORTAL_BROKER_URL``: the same work flows through PostgreSQL, Redis, NATS and RabbitMQ.

Each test looks inside the broker it names. The worker's own sweep and a kick from this process
must be stored there and taken from there by the worker; with any broker but PostgreSQL, the
PostgreSQL queue table must not receive a single message.
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
from portal.tasks.broker import QUEUE_TABLE, create_broker
from portal.tasks.system import purge_sessions
from portal.testing import customer_id
from support.queue import queue_table_written

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
WAIT = 60.0


def _task(data: bytes | str) -> tuple[str, str]:
    """The task id and name of a taskiq message as the brokers carry it (JSON)."""
    message = json.loads(data)
    return str(message["task_id"]), str(message["task_name"])


def _carried_problem(carried: dict[str, str], kicked: list[str], where: str) -> str | None:
    """What is missing from ``carried`` (task id to name): the worker's own sweep or one of ``kicked``."""
    missing = [task_id for task_id in kicked if task_id not in carried]
    if missing:
        return f"the kick(s) {missing} from this process are not in {where} (it carried {carried})"
    if not any(name == SWEEP and task_id not in kicked for task_id, name in carried.items()):
        return f"the worker's own {SWEEP} is not in {where} (it carried {carried})"
    return None


class Probe:
    """Looks inside one broker: what it carried since :meth:`open` and whether a worker took it."""

    async def open(self) -> None:
        raise NotImplementedError

    async def problem(self, kicked: list[str]) -> str | None:
        """None once the worker's sweep and every ``kicked`` task went through and were taken."""
        raise NotImplementedError

    async def close(self) -> None:
        return None


class PostgresProbe(Probe):
    """The queue table: rows are inserted by a kick and deleted when a worker acknowledges them."""

    def __init__(self, owner: asyncpg.Connection) -> None:
        self.owner = owner
        self.before = 0

    async def open(self) -> None:
        self.before = await queue_table_written(self.owner)

    async def problem(self, kicked: list[str]) -> str | None:
        written = await queue_table_written(self.owner) - self.before
        if written < 1 + len(kicked):
            return (
                f"{written} message(s) went into {QUEUE_TABLE}; expected the worker's sweep and {len(kicked)} kick(s)"
            )
        left = await self.owner.fetch(
            f"SELECT id, task_id, task_name, status FROM {QUEUE_TABLE} WHERE id > $1 ORDER BY id", self.before
        )
        if left:
            return f"messages not yet taken and acknowledged: {[dict(row) for row in left]}"
        return None


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

    async def close(self) -> None:
        await self.client.close()


class RabbitProbe(Probe):
    """A queue of this test's own, bound like the task queue, receives a copy of every message published."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.carried: dict[str, str] = {}

    async def open(self) -> None:
        import aio_pika

        self.connection = await aio_pika.connect(self.url)
        self.channel = await self.connection.channel()
        self.copies = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await self.copies.bind(EXCHANGE, routing_key=QUEUE)

    async def problem(self, kicked: list[str]) -> str | None:
        while (copy := await self.copies.get(no_ack=True, fail=False)) is not None:
            task_id, name = _task(copy.body)
            self.carried[task_id] = name
        if problem := _carried_problem(self.carried, kicked, f"the RabbitMQ queue {QUEUE}"):
            return problem
        queue = (await self.channel.declare_queue(QUEUE, passive=True)).declaration_result
        if queue.consumer_count < 1:
            return f"no worker consumes the RabbitMQ queue {QUEUE}"
        if queue.message_count:
            return f"{queue.message_count} message(s) still wait in the RabbitMQ queue {QUEUE}"
        return None

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
async def test_a_worker_process_receives_work_through_each_broker(
    shared_tenants: Platform, name: str, tmp_path: Path
) -> None:
    url = BROKERS[name]
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    log = tmp_path / "worker.log"
    async with contextlib.AsyncExitStack() as stack:
        owner = await asyncpg.connect(shared_tenants.settings.database_url)
        stack.push_async_callback(owner.close)
        settings = msgspec.structs.replace(shared_tenants.settings, broker_url=url)
        broker = create_broker(settings, await shared_tenants.database.app_dsn(), make_default=False)
        await broker.startup()  # declares the stream, consumer group or queue the worker reads
        stack.push_async_callback(broker.shutdown)
        probe = PostgresProbe(owner) if url is None else PROBES[name](url)
        await probe.open()
        stack.push_async_callback(probe.close)
        table_before = await queue_table_written(owner)

        async def table_untouched() -> str | None:
            if url is not None and (written := await queue_table_written(owner) - table_before):
                return f"{QUEUE_TABLE} received {written} message(s) although the worker uses {name}"
            return None

        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env["PORTAL_DATABASE_URL"] = str(shared_tenants.settings.database_url)
        if url:
            env["PORTAL_BROKER_URL"] = url
        with log.open("wb") as out:
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "portal.cli", "worker", cwd=ROOT, env=env, stdout=out, stderr=out
            )
        stack.push_async_callback(_stop, worker)

        async def until(check: Callable[[], Awaitable[str | None]], what: str) -> None:
            """Poll ``check`` until it reports no problem; fail at once if the PostgreSQL queue is used."""
            deadline = time.monotonic() + WAIT
            while (problem := await check()) is not None:
                if (wrong := await table_untouched()) is not None:
                    raise AssertionError(f"{wrong}\n{_log(log)}")
                if worker.returncode is not None:
                    raise AssertionError(
                        f"the worker exited ({worker.returncode}) before {what}: {problem}\n{_log(log)}"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {what} within {WAIT:g} s: {problem}\n{_log(log)}")
                await asyncio.sleep(0.1)

        # The worker kicks its sweep when it starts: through the broker, and back to it.
        await until(lambda: probe.problem([]), f"sweep of the worker's own through {name}")
        # Then a kick from this process, through the same broker, reaches the worker and is taken.
        session_id = f"broker-{name}-{jane}"
        await insert_expired_session(owner, session_id, jane)
        kicked = [(await purge_sessions.kicker().with_broker(broker).kiq()).task_id]

        async def purged() -> str | None:
            if await owner.fetchval("SELECT count(*) FROM portal_session WHERE id = $1", session_id):
                return f"the expired session {session_id} is still there"
            return None

        await until(purged, f"sweep kicked from this process through {name}")
        await until(lambda: probe.problem(kicked), f"kick from this process carried by {name} and taken")
        await _stop(worker)
        assert worker.returncode == 0, _log(log)
        untouched = await table_untouched()
        assert untouched is None, f"{untouched}\n{_log(log)}"


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
