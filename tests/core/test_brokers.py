"""``PORTAL_BROKER_URL``: the same work flows through PostgreSQL, Redis, NATS and RabbitMQ."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
import pytest

from portal.platform import Platform
from portal.tasks.broker import create_broker
from portal.tasks.system import purge_sessions
from portal.testing import customer_id

ROOT = Path(__file__).parents[2]
BROKERS = {
    "postgresql": None,
    "redis": "redis://127.0.0.1:6379/15",
    "nats": "nats://127.0.0.1:4222",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
}


@pytest.mark.parametrize("name", sorted(BROKERS))
async def test_a_worker_process_receives_work_through_each_broker(shared_tenants: Platform, name: str) -> None:
    url = BROKERS[name]
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    owner = await asyncpg.connect(shared_tenants.settings.database_url)
    past = datetime.now(UTC) - timedelta(days=3)
    session_id = f"broker-{name}-{jane}"
    await owner.execute(
        "INSERT INTO portal_session (id, iso_id, merchant_id, customer_id, created_at, last_seen_at, expires_at) "
        "SELECT $1, iso_id, merchant_id, id, $3, $3, $3 FROM portal_customer WHERE id = $2",
        session_id,
        jane,
        past,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_DATABASE_URL"] = str(shared_tenants.settings.database_url)
    if url:
        env["PORTAL_BROKER_URL"] = url
    worker = subprocess.Popen(  # noqa: ASYNC220 - starts a process, does not wait for it
        [sys.executable, "-m", "portal.cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    settings = msgspec.structs.replace(shared_tenants.settings, broker_url=url)
    broker = create_broker(settings, await shared_tenants.database.app_dsn(), make_default=False)
    await broker.startup()
    try:
        gone = False
        for attempt in range(150):
            if attempt % 25 == 0:  # kick from this process too, through the same broker
                await purge_sessions.kicker().with_broker(broker).kiq()
            await asyncio.sleep(0.1)
            if not await owner.fetchval("SELECT count(*) FROM portal_session WHERE id = $1", session_id):
                gone = True
                break
        assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
        assert gone, f"the {name} worker did not run the sweep"
    finally:
        await broker.shutdown()
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
        await owner.close()
    assert worker.returncode == 0, output
