"""``portal worker`` processes deliver webhooks, survive SIGKILL and share the load, on each broker."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from typing import Any

import asyncpg
from reliability.conftest import (
    HookMerchant,
    Receiver,
    Reply,
    Request,
    Workers,
    add_endpoint,
    emit_events,
    settled,
)

from portal.events.delivery import lease_for

WORKER_TIMEOUT = 2.0
"""Long enough that the held request is still open when the worker is killed."""


async def test_a_killed_worker_loses_nothing(
    workers: Workers, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    release = asyncio.Event()
    held: list[str] = []

    async def respond(request: Request) -> Reply:
        if not held:
            held.append(request.msg_id)
            await release.wait()  # never answers: the worker dies first
        return 200, {}, b"ok"

    receiver.respond = respond
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    first = await workers.start(webhook_timeout=WORKER_TIMEOUT)
    began = time.monotonic()
    try:
        await emit_events(merchant, 1)  # a worker that does not listen yet finds it when it polls
        await receiver.wait_for(lambda: bool(held), 30, lambda: "the first worker to send\n" + workers.output())
        first.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGKILL
        killed_at = time.monotonic()
        events = await emit_events(merchant, 20, per_transaction=5)  # queued while no worker runs
        await workers.start(webhook_timeout=WORKER_TIMEOUT)
        await receiver.wait_for(
            lambda: len(set(receiver.ids())) >= 21 and receiver.ids().count(held[0]) >= 2,
            60,
            lambda: "the second worker to deliver\n" + workers.output(),
        )
        # Settled in the database: none can be claimed, so none can be sent, again.
        rows = await settled(owner, endpoint, 21, 30, workers.output)
    finally:
        release.set()
    counts = collections.Counter(receiver.ids())
    assert len(counts) == 21 and not receiver.failures
    assert counts[held[0]] == 2, "the interrupted message is sent again"
    assert all(n == 1 for msg_id, n in counts.items() if msg_id != held[0]), counts
    assert len(rows) == 21 and {row["status"] for row in rows} == {"succeeded"}
    assert {row["id"]: row["attempts"] for row in rows} == dict(counts), "every claim was one send, and it arrived"
    interrupted = next(row for row in rows if row["id"] == held[0])
    assert interrupted["attempts"] == 2
    # The interrupted message waited for its lease, no longer.
    redelivered = max(r.at for r in receiver.requests if r.msg_id == held[0])
    assert redelivered - (time.time() - (time.monotonic() - killed_at)) <= 10 + _lease_seconds()
    assert {payload["id"] for payload in (_payload(r) for r in receiver.requests)} >= set(events)
    assert time.monotonic() - began < 90


async def test_two_workers_deliver_a_thousand_events_once(
    workers: Workers, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    # A timeout counts as a failure and is retried, so a receiver slowed by this burst on a busy
    # machine would cause legitimate duplicates; give it the production-like headroom.
    await workers.start(webhook_timeout=10.0)
    await workers.start(webhook_timeout=10.0)
    began = time.monotonic()
    events = await emit_events(merchant, 1000, per_transaction=50)
    await receiver.wait_for(
        lambda: len(set(receiver.ids())) >= 1000, 60, lambda: "1,000 deliveries\n" + workers.output()[-4000:]
    )
    elapsed = time.monotonic() - began
    # Settled in the database: none can be claimed, so none can be sent, again.
    rows = await settled(owner, endpoint, 1000, 30, lambda: workers.output()[-4000:])
    counts = collections.Counter(receiver.ids())
    assert len(counts) == 1000 and not receiver.failures
    duplicates = {msg_id: n for msg_id, n in counts.items() if n > 1}
    errors = await owner.fetch(
        "SELECT error, status_code FROM portal_webhook_attempt WHERE delivery_id IN "
        "(SELECT id FROM portal_webhook_delivery WHERE endpoint_id = $1) AND (error IS NOT NULL OR status_code >= 300)",
        endpoint,
    )
    assert duplicates == {}, f"{len(duplicates)} messages were sent more than once; failed attempts: {errors[:5]}"
    assert {_payload(r)["id"] for r in receiver.requests} == set(events)
    assert len(rows) == 1000 and {row["status"] for row in rows} == {"succeeded"}
    assert {row["attempts"] for row in rows} == {1}
    assert elapsed < 60, f"took {elapsed:.1f} s"
    print(f"\n1,000 events through two workers on {workers.broker}: {elapsed:.1f} s")
    for process, _ in workers.processes:
        assert process.returncode is None, workers.output()[-4000:]
    output = workers.output()
    assert "Traceback" not in output, output[-4000:]
    assert receiver.secrets[0] not in output and "Customer" not in output  # no secrets or payloads in logs


def _payload(request: Request) -> dict[str, Any]:
    import json

    return dict(json.loads(request.body))


def _lease_seconds() -> float:
    from portal.config import Settings

    return lease_for(Settings(webhook_timeout=WORKER_TIMEOUT), 100).total_seconds()
