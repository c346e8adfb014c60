"""Webhook delivery against real services: PostgreSQL, a real HTTP receiver on loopback, Redis.

The receiver verifies every signature with the ``standardwebhooks`` package (not our code) and
answers as each test scripts it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
import pytest_asyncio

from portal.config import Settings
from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.events.bus import SYSTEM, emit
from portal.events.signing import new_secret
from portal.ids import new_id
from portal.platform import Platform
from portal.tenancy.models import MerchantView
from portal.testing import apply_tenants
from support.queue import WakeUps
from support.receiver import Receiver, Request
from support.receiver import Reply as Reply  # re-exported for the tests here

ROOT = Path(__file__).parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_TIMEOUT = 1.0


class DeliveryPlatform:
    """The started platform seen with the delivery settings of this suite.

    Loopback receivers are allowed and an attempt times out after one second. The session
    platform is shared with every other directory's tests and keeps the default settings, so
    these settings never leak into them; delivery reads only these attributes.
    """

    def __init__(self, platform: Platform, settings: Settings) -> None:
        self.platform = platform
        self.settings = settings
        self.tenants = platform.tenants
        self.themes = platform.themes
        self.catalogs = platform.catalogs
        self.registry = platform.registry
        self.resolve = platform.resolve
        self.broker = platform.broker


@pytest.fixture(scope="session")
def hooks(portal_platform: Platform) -> Any:
    """What ``deliver_due`` and friends take as the platform in these tests."""
    settings = msgspec.structs.replace(
        portal_platform.settings, webhook_allow_private=True, webhook_timeout=TEST_TIMEOUT
    )
    return DeliveryPlatform(portal_platform, settings)


# --- the receiver (support.receiver) -------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver([new_secret()])
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# --- tenants, endpoints, events -------------------------------------------------------------


@dataclass
class HookMerchant:
    merchant: MerchantView
    iso_id: str
    id: str
    endpoints: list[str] = field(default_factory=list)


@pytest_asyncio.fixture(loop_scope="session")
async def owner(portal_platform: Platform) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection, for moving retry times and reading everything."""
    connection = await asyncpg.connect(portal_platform.settings.database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest_asyncio.fixture(loop_scope="session")
async def merchant(portal_platform: Platform, tmp_path: Path, owner: asyncpg.Connection) -> AsyncIterator[HookMerchant]:
    """A fresh merchant (with a support address) of the ``t-hooks`` ISO; its endpoints are retired after."""
    slug = f"t-hooks-{uuid.uuid4().hex[:8]}"
    await apply_tenants(
        portal_platform,
        f"""
[[isos]]
slug = "t-hooks"
name = "Hooks ISO (test)"

[[isos.merchants]]
slug = "{slug}"
name = "Hooks {slug[-8:]}"
[isos.merchants.brand]
color = "#1d4ed8"
support_email = "support@{slug}.test"
""",
        tmp_path,
    )
    async with system_transaction():
        found = await fetch("SELECT * FROM portal_locate_merchant($1)", slug)
    iso_id, merchant_id = found[0]["iso_id"], found[0]["merchant_id"]
    tenant = await portal_platform.tenants.load_merchant(iso_id, merchant_id)
    assert tenant is not None
    hook = HookMerchant(merchant=tenant.merchant, iso_id=iso_id, id=merchant_id)
    try:
        yield hook
    finally:
        await owner.execute(
            "UPDATE portal_webhook_delivery SET status = 'cancelled' WHERE merchant_id = $1 AND status = 'pending'",
            merchant_id,
        )
        await owner.execute("UPDATE portal_webhook_endpoint SET enabled = false WHERE merchant_id = $1", merchant_id)


async def add_endpoint(
    hook: HookMerchant,
    url: str,
    secret: str,
    *,
    previous_secret: str | None = None,
    previous_until_hours: float | None = None,
) -> str:
    endpoint_id = new_id("we")
    async with tenant_transaction(hook.iso_id):
        await fetch(
            """
            INSERT INTO portal_webhook_endpoint (id, iso_id, merchant_id, url, description, event_types, enabled,
                secret, previous_secret, previous_secret_until, created_at, updated_at)
            VALUES ($1, $2, $3, $4, 'test', '[]'::jsonb, true, $5, $6,
                    CASE WHEN $7::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $7::float8 * 3600) END,
                    now(), now())
            """,
            endpoint_id, hook.iso_id, hook.id, url, secret, previous_secret, previous_until_hours,
        )  # fmt: skip
    hook.endpoints.append(endpoint_id)
    return endpoint_id


async def emit_events(hook: HookMerchant, count: int = 1, *, per_transaction: int = 100) -> list[str]:
    """Emit ``customer.updated`` events in committed transactions; return the event ids."""
    ids: list[str] = []
    for start in range(0, count, per_transaction):
        async with tenant_transaction(hook.iso_id):
            for i in range(start, min(count, start + per_transaction)):
                event = await emit(
                    hook.merchant,
                    "customer.updated",
                    {
                        "id": f"cus_test{i:06d}",
                        "merchant": hook.id,
                        "email": f"c{i}@example.test",
                        "name": f"Customer Ünïcode {i}",
                        "external_ref": None,
                    },
                    actor=SYSTEM,
                    enabled_plugins=frozenset(),
                )
                ids.append(event.id)
    return ids


async def deliveries(owner: asyncpg.Connection, endpoint_id: str) -> list[dict[str, Any]]:
    rows = await owner.fetch(
        "SELECT * FROM portal_webhook_delivery WHERE endpoint_id = $1 ORDER BY created_at, id", endpoint_id
    )
    return [dict(row) for row in rows]


async def attempts(owner: asyncpg.Connection, delivery_id: str) -> list[dict[str, Any]]:
    rows = await owner.fetch(
        "SELECT * FROM portal_webhook_attempt WHERE delivery_id = $1 ORDER BY attempted_at, id", delivery_id
    )
    return [dict(row) for row in rows]


async def settled(
    owner: asyncpg.Connection, endpoint_id: str, count: int, seconds: float, what: Callable[[], str] = str
) -> list[dict[str, Any]]:
    """The endpoint's deliveries once there are ``count`` and none is pending, waiting up to ``seconds``.

    A delivery that is no longer pending can never be claimed again, and every send is a claim
    (it adds one to ``attempts``): from here on nothing more is sent for these messages, and each
    was sent exactly ``attempts`` times.
    """
    deadline = time.monotonic() + seconds
    while True:
        rows = await deliveries(owner, endpoint_id)
        if len(rows) >= count and all(row["status"] != "pending" for row in rows):
            return rows
        if time.monotonic() > deadline:
            statuses = collections.Counter(row["status"] for row in rows)
            raise AssertionError(
                f"timed out after {seconds:g} s waiting for {count} settled deliveries (got {dict(statuses)})\n{what()}"
            )
        await asyncio.sleep(0.05)


async def make_due(owner: asyncpg.Connection, endpoint_id: str) -> None:
    """Skip the wait before the next attempt (the schedule's delays are minutes to hours)."""
    await owner.execute(
        "UPDATE portal_webhook_delivery SET next_attempt_at = now() WHERE endpoint_id = $1 AND status = 'pending'",
        endpoint_id,
    )


# --- worker processes -----------------------------------------------------------------------


def worker_env(platform: Platform, broker: str, timeout: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_DATABASE_URL"] = str(platform.settings.database_url)
    env["PORTAL_WEBHOOK_ALLOW_PRIVATE"] = "true"
    env["PORTAL_WEBHOOK_TIMEOUT"] = str(timeout)
    env["PORTAL_LOG_LEVEL"] = "info"
    if broker == "redis":
        env["PORTAL_BROKER_URL"] = REDIS_URL
    return env


class Workers:
    """``portal worker`` subprocesses; output goes to files under the test's tmp_path."""

    def __init__(self, platform: Platform, broker: str, folder: Path) -> None:
        self.platform = platform
        self.broker = broker
        self.folder = folder
        self.processes: list[tuple[asyncio.subprocess.Process, Path]] = []

    async def start(self, webhook_timeout: float = TEST_TIMEOUT) -> asyncio.subprocess.Process:
        log = self.folder / f"worker-{len(self.processes)}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "portal.cli", "worker",
                cwd=ROOT, env=worker_env(self.platform, self.broker, webhook_timeout), stdout=out, stderr=out,
            )  # fmt: skip
        self.processes.append((process, log))
        return process

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}" for _, log in self.processes)

    async def stop_all(self) -> None:
        for process, _ in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest_asyncio.fixture(loop_scope="session", params=["postgresql", "redis"])
async def workers(request: pytest.FixtureRequest, portal_platform: Platform, tmp_path: Path) -> AsyncIterator[Workers]:
    """Worker processes on the PostgreSQL or the Redis broker; this process kicks through the same one.

    Afterwards the broker must have carried the kicks: with Redis, entries were added to its
    stream and read by the workers' consumer group, and no PostgreSQL wake-up was sent; with
    PostgreSQL, wake-ups were sent on its channel.
    """
    from taskiq import async_shared_broker

    from portal.tasks.broker import create_broker

    broker_name: str = request.param
    kicker: Any = None
    stream_before = (0, 0)
    wake_ups = WakeUps(str(portal_platform.settings.database_url))
    await wake_ups.__aenter__()
    if broker_name == "redis":
        settings = msgspec.structs.replace(portal_platform.settings, broker_url=REDIS_URL)
        kicker = create_broker(settings, await portal_platform.database.app_dsn())
        await kicker.startup()
        stream_before = await _stream_counts()
    pool = Workers(portal_platform, broker_name, tmp_path)
    try:
        yield pool
    finally:
        await pool.stop_all()
        try:
            if kicker is not None:
                stream_after = await _stream_counts()
        finally:
            await wake_ups.__aexit__()
            if kicker is not None:
                await kicker.shutdown()
                assert portal_platform.broker is not None
                async_shared_broker.default_broker(portal_platform.broker)
    if broker_name == "redis":
        assert stream_after[0] > stream_before[0], "kicks were added to the Redis stream"
        assert stream_after[1] > stream_before[1], "the workers read the kicks from the Redis stream"
        assert not wake_ups.messages, f"{len(wake_ups.messages)} PostgreSQL wake-up(s) were sent with the Redis broker"
    else:
        assert wake_ups.messages, "no wake-up went through PostgreSQL's channel"


async def _stream_counts() -> tuple[int, int]:
    """Entries added to the Redis stream ``portal_tasks``, and read by its group ``portal_workers``, so far."""
    from redis.asyncio import Redis

    async with Redis.from_url(REDIS_URL, decode_responses=True) as redis:
        added = int((await redis.xinfo_stream("portal_tasks"))["entries-added"])
        groups = await redis.xinfo_groups("portal_tasks")
    read = sum(int(group.get("entries-read") or 0) for group in groups if group["name"] == "portal_workers")
    return added, read


def payload_of(request: Request) -> dict[str, Any]:
    return dict(json.loads(request.body))
