"""What an audited event adds to a business write.

Runs, interleaved, N iterations of three transactions against a fresh database:

- ``baseline``: insert one customer row;
- ``emit``: the same plus ``emit("customer.created")`` with two subscribed webhook endpoints
  (audit record with its hash-chain step, two outbox rows), the after-commit worker kick stubbed out;
- ``emit+kick``: the same with the after-commit kick (a taskiq message on the PostgreSQL broker).

Prints median and p95 of each and the overhead of ``emit`` over ``baseline``.

    uv run python bench/emit_overhead.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

The URL is an owner connection to any database of the server; the script creates its own database,
migrates it with ``Platform.migrate()``, and drops it afterwards.

``--audit-records N`` first fills the merchant's audit chain with N records by ``COPY`` (a valid
chain: each hash made by production's ``chain_hash``; customer, invoice and subscription events
spread over the past year), then lets PostgreSQL analyze the table as autovacuum would, so that
``emit`` reads the head of a long chain the way it does in production.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
from harness import bench_platform, no_worker_kick, say

from portal.db.engine import fetch, tenant_transaction
from portal.events import bus
from portal.events.chain import GENESIS, chain_hash
from portal.events.core_types import CustomerPayload
from portal.ids import new_id
from portal.tenancy.models import MerchantView, normalize_email

ACTOR = bus.Actor(type="merchant_api_key", id="key_bench", ip="203.0.113.7", user_agent="bench/1", request_id="req_b")


async def insert_customer(merchant: MerchantView) -> dict[str, object]:
    """Insert one customer row in the current transaction."""
    customer = new_id("cus")
    email = f"{customer}@example.com"
    rows = await fetch(
        "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, merchant_id, email, name, external_ref",
        customer,
        merchant.iso_id,
        merchant.id,
        email,
        normalize_email(email),
        "Bench Customer",
    )
    return rows[0]


async def baseline(merchant: MerchantView) -> None:
    """The business write alone."""
    async with tenant_transaction(merchant.iso_id):
        await insert_customer(merchant)


async def with_emit(merchant: MerchantView) -> None:
    """The business write and its event, in one transaction."""
    async with tenant_transaction(merchant.iso_id):
        row = await insert_customer(merchant)
        await bus.emit(
            merchant,
            "customer.created",
            CustomerPayload(
                id=str(row["id"]),
                merchant=str(row["merchant_id"]),
                email=str(row["email"]),
                name=str(row["name"]),
                external_ref=None,
            ),
            actor=ACTOR,
            target=("customer", str(row["id"])),
            customer_id=str(row["id"]),
        )


AUDIT_COLUMNS = (
    "id", "iso_id", "merchant_id", "seq", "prev_hash", "hash", "type", "actor_type", "actor_id", "target_type",
    "target_id", "customer_id", "data", "before", "after", "ip", "user_agent", "request_id", "occurred_at",
)  # fmt: skip
FILL_KINDS = ("customer.created", "invoice.created", "invoice.finalized", "invoice.paid", "subscription.renewed")


async def fill_audit_chain(owner_dsn: str, merchant: MerchantView, records: int, chunk: int = 50_000) -> None:
    """Append ``records`` valid chained audit records to the merchant's chain by COPY, then ANALYZE the table."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    step = timedelta(days=365) / max(records, 1)
    connection = await asyncpg.connect(owner_dsn)
    try:
        head = await connection.fetchrow(
            "SELECT seq, hash FROM portal_audit_event WHERE merchant_id = $1 ORDER BY seq DESC LIMIT 1", merchant.id
        )
        seq, prev = (head["seq"], head["hash"]) if head else (0, GENESIS)
        written = 0
        while written < records:
            rows = []
            for n in range(written, min(written + chunk, records)):
                seq += 1
                kind = FILL_KINDS[n % len(FILL_KINDS)]
                customer = f"cus_{n // 5:026d}"
                at = now - timedelta(days=366) + step * n
                data = {"id": customer, "merchant": merchant.id, "email": f"c{n // 5}@example.com"}
                record = {
                    "id": f"evt_{n:026d}", "iso_id": merchant.iso_id, "merchant_id": merchant.id, "seq": seq,
                    "type": kind, "actor_type": "system", "actor_id": None, "target_type": "customer",
                    "target_id": customer, "customer_id": customer, "data": data, "before": None, "after": None,
                    "ip": None, "user_agent": None, "request_id": None, "occurred_at": at,
                }  # fmt: skip
                digest = chain_hash(prev, record)
                rows.append(
                    (record["id"], merchant.iso_id, merchant.id, seq, prev, digest, kind, "system", None, "customer",
                     customer, customer, msgspec.json.encode(data).decode(), None, None, None, None, None, at)
                )  # fmt: skip
                prev = digest
            await connection.copy_records_to_table("portal_audit_event", records=rows, columns=list(AUDIT_COLUMNS))
            written += len(rows)
            elapsed = time.perf_counter() - started
            say(f"  audit records: {written:,} of {records:,} ({written / elapsed:,.0f} rows/s)")
        await connection.execute("ANALYZE portal_audit_event")
    finally:
        await connection.close()
    say(f"audit chain filled: {records:,} records in {time.perf_counter() - started:.1f} s, head seq {seq}")


def summary(name: str, samples: list[float]) -> str:
    """Median, p95 and mean of one series, in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    median, mean = statistics.median(ordered), statistics.fmean(ordered)
    return f"{name:<10} median {median:7.3f} ms   p95 {p95:7.3f} ms   mean {mean:7.3f} ms"


async def run(database_url: str, iterations: int, warmup: int, audit_records: int = 0) -> None:
    """Create the database, measure, report, drop the database."""
    async with bench_platform(database_url) as (platform, merchant):
        if audit_records:
            await fill_audit_chain(platform.settings.database_url, merchant, audit_records)
        async with tenant_transaction(merchant.iso_id):
            for n in range(2):
                await fetch(
                    "INSERT INTO portal_webhook_endpoint (id, iso_id, merchant_id, url, event_types, secret) "
                    "VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
                    new_id("we"), merchant.iso_id, merchant.id, f"https://hooks{n}.example.invalid/",
                    '["customer.created"]' if n else "[]", "whsec_" + "A" * 32,
                )  # fmt: skip

        async def emit_no_kick(m: MerchantView) -> None:
            with no_worker_kick():
                await with_emit(m)

        series: dict[str, Callable[[MerchantView], Awaitable[None]]] = {
            "baseline": baseline,
            "emit": emit_no_kick,
            "emit+kick": with_emit,
        }
        samples: dict[str, list[float]] = {key: [] for key in series}
        for index in range(warmup + iterations):
            for key, action in series.items():
                started = time.perf_counter()
                await action(merchant)
                elapsed = (time.perf_counter() - started) * 1000
                if index >= warmup:
                    samples[key].append(elapsed)
        async with tenant_transaction(merchant.iso_id):
            counts = await fetch(
                "SELECT (SELECT count(*) FROM portal_audit_event) AS audit, "
                "(SELECT count(*) FROM portal_webhook_delivery) AS deliveries, "
                "(SELECT max(seq) FROM portal_audit_event) AS head"
            )
        say(f"{iterations} iterations per series (after {warmup} warm-up), interleaved")
        for key, values in samples.items():
            say(summary(key, values))
        overhead = statistics.median(samples["emit"]) - statistics.median(samples["baseline"])
        overhead_kick = statistics.median(samples["emit+kick"]) - statistics.median(samples["baseline"])
        say(f"emit overhead (median difference): {overhead:.3f} ms; with the worker kick: {overhead_kick:.3f} ms")
        say(f"target: under 2 ms median -> {'met' if overhead < 2 else 'NOT met'}")
        row = counts[0]
        say(f"rows written: {row['audit']} audit records (head seq {row['head']}), {row['deliveries']} deliveries")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--audit-records", type=int, default=0, help="Records in the merchant's chain beforehand.")
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.iterations, args.warmup, args.audit_records))


if __name__ == "__main__":
    main()
