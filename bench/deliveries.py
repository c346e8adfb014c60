"""Webhook deliveries per second that one worker sustains to a local receiver.

Queues N events for one endpoint, then runs one worker's delivery loop (``deliver_due``, the
production code) in this process until every message succeeded, against a receiver in another
process that answers 204 at once. Prints messages per second.

    uv run python bench/deliveries.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

from harness import bench_platform, free_port, no_worker_kick, say

from portal.db.engine import fetch, tenant_transaction
from portal.events import bus
from portal.events.delivery import deliver_due
from portal.events.signing import new_secret
from portal.ids import new_id

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


async def run(database_url: str, messages: int) -> None:
    """Queue ``messages`` events, deliver them with one worker loop, report the rate."""
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
            started = time.perf_counter()
            while await deliver_due(platform, merchant.iso_id):
                pass
            elapsed = time.perf_counter() - started
            async with tenant_transaction(merchant.iso_id):
                rows = await fetch(
                    "SELECT status, count(*) AS n FROM portal_webhook_delivery GROUP BY status ORDER BY status"
                )
            say(f"{messages} messages delivered in {elapsed:.2f} s by one worker loop")
            say(f"rate: {messages / elapsed:.0f} deliveries/s (target: at least 500/s)")
            say("statuses: " + ", ".join(f"{row['status']}={row['n']}" for row in rows))
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.messages))


if __name__ == "__main__":
    main()
