"""Subscription renewals per second that one worker sustains against the sandbox gateway.

Creates N customers with an approving sandbox card on file and an active monthly subscription
whose period ended an hour ago (written in bulk, as the ledger leaves a paid first period), then
runs what a worker runs, in this process: the renewals job (``portal.billing.renewals``, which
queues one renew task per subscription) and the durable-task loop (``run_due_tasks``, the
worker's task lane: renew = next invoice created and finalized, charge = sandbox sale recorded,
invoice paid) until every subscription is renewed and every invoice paid. Prints renewals per
second, counted from the job's start to the last payment. With ``--workers 2`` the task loop
runs in two worker processes side by side instead (the job first, in this process; the rate then
counts from the workers' start).

    uv run python bench/renewals.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cards_pages import log_statements, statements_into
from harness import bench_platform, no_worker_kick, say
from workers import report, run_workers, wait_for_start, worker_platform

from portal.billing import catalog, engine
from portal.billing.calendar import add_periods
from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.events.bus import SYSTEM
from portal.platform import Platform
from portal.tasks.durable import run_due_tasks
from portal.tasks.worker import Worker
from portal.testing import apply_tenants

TZ = "UTC"
MERCHANT = """
[[isos.merchants]]
slug = "bench-renewals-{i}"
name = "Bench Renewals {i}"
timezone = "UTC"
[isos.merchants.gateway]
key = "sandbox"
"""


def tenants(merchants: int) -> str:
    """The bench ISO with ``merchants`` merchants on the sandbox gateway."""
    return '[[isos]]\nslug = "bench-iso"\nname = "Bench ISO"\n' + "".join(
        MERCHANT.format(i=i) for i in range(merchants)
    )


async def seed(tenant: object, count: int, started: datetime) -> None:
    """``count`` customers with a sandbox card and a monthly subscription started at ``started``."""
    merchant = tenant.merchant  # type: ignore[attr-defined]
    tag = uuid.uuid4().hex[:8]
    end = add_periods(started, started, "month", 1, tz=TZ)
    async with tenant_transaction(merchant.iso_id):
        product = await catalog.create_product(tenant, name="Monthly Bread Box", actor=SYSTEM)  # type: ignore[arg-type]
        price = await catalog.create_price(
            tenant,  # type: ignore[arg-type]
            product_id=product.id, currency="USD", unit_amount=3900, interval="month", actor=SYSTEM,
        )  # fmt: skip
        args = (merchant.iso_id, merchant.id, count, tag)
        await fetch(
            "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
            "SELECT 'cus_' || $4 || i, $1, $2, 'c' || i || '@' || $4 || '.test', 'c' || i || '@' || $4 || '.test', "
            "'Customer ' || i FROM generate_series(1, $3) i",
            *args,
        )
        await fetch(
            "INSERT INTO portal_sandbox_vault (iso_id, merchant_id, vault_id, customer_id, email, name) "
            "SELECT $1, $2, 'sbx_cv_' || $4 || i, 'cus_' || $4 || i, 'c' || i || '@' || $4 || '.test', 'Customer' "
            "FROM generate_series(1, $3) i",
            *args,
        )
        await fetch(
            "INSERT INTO portal_sandbox_billing (iso_id, merchant_id, vault_id, billing_id, brand, last4, exp_month, "
            "exp_year, behaviour) SELECT $1, $2, 'sbx_cv_' || $4 || i, 'pm_' || $4 || i, 'visa', '1111', 12, 2040, "
            "'approve' FROM generate_series(1, $3) i",
            *args,
        )
        await fetch(
            "INSERT INTO portal_payment_method (id, iso_id, merchant_id, customer_id, gateway, vault_id, billing_id, "
            "brand, last4, exp_month, exp_year, is_default, created_at) SELECT 'pm_' || $4 || i, $1, $2, "
            "'cus_' || $4 || i, 'sandbox', 'sbx_cv_' || $4 || i, 'pm_' || $4 || i, 'visa', '1111', 12, 2040, true, "
            "now() FROM generate_series(1, $3) i",
            *args,
        )
        await fetch(
            "INSERT INTO portal_billing_subscription (id, iso_id, merchant_id, customer_id, price_id, quantity, "
            "status, current_period_start, current_period_end, billing_anchor, created_at, updated_at) "
            "SELECT 'sub_' || $4 || i, $1, $2, 'cus_' || $4 || i, $5, 1, 'active', $6, $7, $6, $6, $6 "
            "FROM generate_series(1, $3) i",
            *args, price.id, started, end,
        )  # fmt: skip


SETTINGS = {"task_lease_seconds": 120.0}


async def renew_all(platform: Platform, iso_id: str, worker_id: str) -> int:
    """Run one worker's task lane until no task is left (due or claimed by another); how many it ran."""
    done = 0
    while True:
        ran = await run_due_tasks(platform, iso_id, worker_id)
        done += ran
        if ran:
            continue
        async with tenant_transaction(iso_id):
            left = await fetch("SELECT EXISTS (SELECT FROM portal_task WHERE status = 'pending') AS left")
        if not left[0]["left"]:
            return done
        await asyncio.sleep(0.05)  # another worker still holds claims: its charges may follow


async def worker(dsn: str, iso_id: str, start_at: float) -> None:
    """One worker process of ``--workers N``: run the task lane from the common start until no task is left."""
    async with worker_platform(dsn, **SETTINGS) as platform:
        began = await wait_for_start(start_at)
        report(await renew_all(platform, iso_id, Worker(platform).id), began)


async def run(database_url: str, count: int, merchants: int, statements: bool = False, workers: int = 1) -> None:
    """Seed ``count`` due subscriptions, renew and charge them with one worker's loops, report the rate.

    With ``statements``, also count the SQL statements the worker's loops send (an instrumented
    asyncpg, which costs time: read the rate from a run without it).
    """
    async with bench_platform(database_url, **SETTINGS) as (platform, bench):
        with tempfile.TemporaryDirectory() as folder:
            await apply_tenants(platform, tenants(merchants), Path(folder))
        shops = []
        for i in range(merchants):
            async with system_transaction():
                found = await fetch("SELECT * FROM portal_locate_merchant($1)", f"bench-renewals-{i}")
            tenant = await platform.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
            assert tenant is not None
            shops.append(tenant)
            seeding = time.perf_counter()
            await seed(tenant, count // merchants, datetime.now(UTC) - timedelta(days=31, hours=1))
            took = time.perf_counter() - seeding
            say(f"set-up: {count // merchants} subscriptions of merchant {i + 1} in {took:.1f} s")
        count = count // merchants * merchants
        iso_id = bench.iso_id
        worker = Worker(platform)
        sent: list[str] = []
        if statements:
            log_statements()
        with no_worker_kick(), statements_into(sent) if statements else contextlib.nullcontext():
            began, cpu_began = time.perf_counter(), time.process_time()
            queued = await engine.renewals(platform)
            job_done = time.perf_counter()
            if workers == 1:
                await renew_all(platform, iso_id, worker.id)
                elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
            else:
                done = await run_workers(__file__, workers, platform.settings.database_url, ["--iso", iso_id])
                elapsed, cpu = done.elapsed, sum(one.cpu for one in done.reports)
        async with tenant_transaction(iso_id):
            rows = await fetch(
                "SELECT (SELECT count(*) FROM portal_billing_invoice WHERE status = 'paid') AS paid, "
                "(SELECT count(*) FROM portal_sandbox_transaction WHERE outcome = 'approved') AS sales"
            )
        paid, sales = rows[0]["paid"], rows[0]["sales"]
        assert paid == sales == count, (paid, sales, count)
        assert queued == count, queued
        say(f"renewals: {count} subscriptions of {merchants} merchant(s) renewed, invoiced and charged "
            f"in {elapsed:.2f} s by {workers} worker(s)")  # fmt: skip
        say(f"  renewals job (queue {count} renew tasks): {job_done - began:.2f} s" +
            ("" if workers == 1 else " (before the workers' start, not counted)"))  # fmt: skip
        say(f"  worker CPU: {cpu:.2f} s ({cpu / count * 1000:.2f} ms per renewal, "
            f"{cpu / elapsed / workers:.0%} busy per worker)")  # fmt: skip
        if workers > 1:
            first = min(one.began for one in done.reports)
            for n, one in enumerate(done.reports, 1):
                say(f"  worker {n}: {one.done} tasks, started at +{one.began - first:.2f} s, "
                    f"ended at +{one.ended - first:.2f} s")  # fmt: skip
        say(f"  renewals per second: {count / elapsed:.0f}, per worker: {count / elapsed / workers:.0f}")
        if statements:
            say(f"  statements: {len(sent)} ({len(sent) / count:.1f} per renewal), the most frequent per renewal:")
            kinds = Counter(re.sub(r"\s+", " ", sql)[:100] for sql in sent)
            for sql, times in kinds.most_common(20):
                say(f"    {times / count:6.2f}  {sql}")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="Owner DSN of any database of the server.",
    )
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--merchants", type=int, default=1, help="Merchants of one ISO sharing the subscriptions.")
    parser.add_argument("--statements", action="store_true", help="Also count the SQL statements sent (slower).")
    parser.add_argument("--workers", type=int, default=1, help="Worker processes side by side (1: in this process).")
    parser.add_argument("--worker-of", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--iso", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_of:
        asyncio.run(worker(args.worker_of, args.iso, args.start_at))
    else:
        asyncio.run(run(args.database_url, args.subscriptions, args.merchants, args.statements, args.workers))


if __name__ == "__main__":
    main()
