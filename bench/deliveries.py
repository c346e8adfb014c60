"""Webhook deliveries per second that one worker sustains to a local receiver.

Queues N events for one endpoint, then runs one worker's delivery loop (``deliver_due``, the
production code) in this process until every message succeeded, against a receiver in another
process that answers 204 at once. Prints messages per second. With ``--workers 2`` the loop runs
in two worker processes side by side instead, claiming from the same queue.

    uv run python bench/deliveries.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from harness import bench_platform, free_port, no_worker_kick, say
from workers import report, run_workers, wait_for_start, worker_platform

from portal.db.engine import fetch, tenant_transaction
from portal.events import bus
from portal.events.delivery import deliver_due
from portal.events.signing import new_secret
from portal.ids import new_id
from portal.platform import Platform

RECEIVER = """
import asyncio, sys

async def handle(reader, writer):
    while not reader.at_eof():
        try:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
        except asyncio.IncompleteReadError:
            break
        length = 0
        for line in head.split(b"\\r\\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 204 No Content\\r\\ncontent-length: 0\\r\\n\\r\\n")
        await writer.drain()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


async def deliver_all(platform: Platform, iso_id: str, worker_id: str | None = None) -> int:
    """Run one worker's delivery loop until nothing is due; how many messages it claimed."""
    done = 0
    while claimed := await deliver_due(platform, iso_id, worker_id=worker_id):
        done += claimed
    return done


async def worker(dsn: str, iso_id: str, start_at: float) -> None:
    """One worker process of ``--workers N``: deliver from the common start until nothing is due."""
    async with worker_platform(dsn, webhook_allow_private=True) as platform:
        began = await wait_for_start(start_at)
        report(await deliver_all(platform, iso_id, f"bench-{os.getpid()}"), began)


async def run(database_url: str, messages: int, workers: int) -> None:
    """Queue ``messages`` events, deliver them with ``workers`` worker loops, report the rate."""
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])  # noqa: S603, ASYNC220 - our own code
    try:
        async with bench_platform(database_url, webhook_allow_private=True) as (platform, merchant):
            async with tenant_transaction(merchant.iso_id):
                await fetch(
                    "INSERT INTO portal_webhook_endpoint (id, iso_id, merchant_id, url, secret) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    new_id("we"), merchant.iso_id, merchant.id, f"http://127.0.0.1:{port}/hooks", new_secret(),
                )  # fmt: skip
            with no_worker_kick():  # measure the worker loop alone
                for start in range(0, messages, 500):
                    async with tenant_transaction(merchant.iso_id):
                        for n in range(start, min(start + 500, messages)):
                            customer = {"id": new_id("cus"), "merchant": merchant.id, "email": f"c{n}@example.com",
                                        "name": f"Customer {n}", "external_ref": None}  # fmt: skip
                            await bus.emit(merchant, "customer.created", customer, actor=bus.SYSTEM,
                                           enabled_plugins=frozenset())  # fmt: skip
            await asyncio.sleep(0.5)  # let the receiver process start listening
            if workers == 1:
                started, cpu_began = time.perf_counter(), time.process_time()
                await deliver_all(platform, merchant.iso_id)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_began
                say(f"worker process CPU: {cpu:.2f} s ({cpu / elapsed:.0%} busy)")
            else:
                dsn = platform.settings.database_url
                done = await run_workers(__file__, workers, dsn, ["--iso", merchant.iso_id])
                elapsed = done.elapsed
                first = min(one.began for one in done.reports)
                for n, one in enumerate(done.reports, 1):
                    say(f"worker {n}: {one.done} messages claimed, started at +{one.began - first:.2f} s, ended "
                        f"at +{one.ended - first:.2f} s, CPU {one.cpu:.2f} s "
                        f"({one.cpu / (one.ended - one.began):.0%} busy)")  # fmt: skip
            async with tenant_transaction(merchant.iso_id):
                rows = await fetch(
                    "SELECT status, count(*) AS n FROM portal_webhook_delivery GROUP BY status ORDER BY status"
                )
            say(f"{messages} messages delivered in {elapsed:.2f} s by {workers} worker loop(s)")
            say(f"rate: {messages / elapsed:.0f} deliveries/s, {messages / elapsed / workers:.0f} per worker "
                "(target: at least 1,000/s per worker)")  # fmt: skip
            say("statuses: " + ", ".join(f"{row['status']}={row['n']}" for row in rows))
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1, help="Worker processes side by side (1: in this process).")
    parser.add_argument("--worker-of", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--iso", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_of:
        asyncio.run(worker(args.worker_of, args.iso, args.start_at))
    else:
        asyncio.run(run(args.database_url, args.messages, args.workers))


if __name__ == "__main__":
    main()
