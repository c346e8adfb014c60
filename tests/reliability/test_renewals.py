"""Renewals run by real ``portal worker`` processes: exactly once, through a SIGKILL; a lost sale answer.

``test_two_workers_renew_a_thousand_subscriptions_once``: 1,000 subscriptions whose monthly
period ended an hour ago (their first period paid; rows written in bulk as the ledger leaves
them), each customer with an approving sandbox card on file. Two ``portal worker`` processes
(task lease 4 s, poll 0.2 s) renew and charge them; once some sales went through, one worker
is killed with SIGKILL and a third starts. Afterwards every subscription was renewed exactly
once (one ``subscription.renewed``, the period moved one month), has exactly one invoice, paid,
and exactly one approved sandbox sale for it; no task is left pending.

``test_a_lost_sale_answer_is_looked_up_and_recorded_once``: a merchant on NMI (the local
NMI-format server); the server charges the renewal's sale and drops the connection without
answering, and the lookups by order id fail too, so the charge task fails and is retried; the
retry asks for the same order id and the earlier approval is recorded, once. NMI charged once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest_asyncio
from reliability.conftest import ROOT, worker_env

from portal.billing import catalog, engine, invoices, subscriptions
from portal.billing.calendar import add_periods
from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.events.bus import SYSTEM
from portal.payments import methods
from portal.platform import Platform
from portal.tasks.durable import run_due_tasks
from portal.tenancy.models import CustomerView, Tenant
from portal.testing import apply_tenants
from support.nmi_server import NmiServer

SUBSCRIPTIONS = 1000
LEASE = 4.0
"""Seconds a claim holds: a killed worker's renewals and charges are taken up that much later."""
BOUND = 60.0
"""Seconds within which everything is renewed and charged, the kill and the lease included."""
TZ = "America/New_York"


async def merchant(platform: Platform, tmp_path: Path, slug: str, gateway: str) -> Tenant:
    await apply_tenants(
        platform,
        f"""
[[isos]]
slug = "{slug}-iso"
name = "Renewals ISO"

[[isos.merchants]]
slug = "{slug}"
name = "Renewals shop"
timezone = "{TZ}"
{gateway}
""",
        tmp_path,
    )
    async with system_transaction():
        found = await fetch("SELECT * FROM portal_locate_merchant($1)", slug)
    tenant = await platform.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
    assert tenant is not None
    return tenant


async def seed(tenant: Tenant, count: int, started: datetime) -> tuple[str, datetime]:
    """``count`` customers with a sandbox card and an active monthly subscription started at ``started``.

    Returns the price id and the period end all of them share.
    """
    merchant = tenant.merchant
    tag = uuid.uuid4().hex[:8]
    end = add_periods(started, started, "month", 1, tz=TZ)
    async with tenant_transaction(merchant.iso_id):
        product = await catalog.create_product(tenant, name="Monthly Bread Box", actor=SYSTEM)
        price = await catalog.create_price(
            tenant, product_id=product.id, currency="USD", unit_amount=3900, interval="month", actor=SYSTEM
        )
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
    return price.id, end


class Worker:
    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, env: dict[str, str]) -> None:
        with self.log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "portal.cli", "worker", cwd=ROOT, env=env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 30
        while "worker ready" not in self.output():
            assert self.process.returncode is None, self.output()
            assert time.monotonic() < deadline, self.output()
            await asyncio.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@pytest_asyncio.fixture(loop_scope="session")
async def workers(tmp_path: Path) -> AsyncIterator[list[Worker]]:
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            await worker.stop()


async def progress(owner: asyncpg.Connection, merchant_id: str, end: datetime) -> dict[str, int]:
    row = await owner.fetchrow(
        """
        SELECT (SELECT count(*) FROM portal_billing_subscription WHERE merchant_id = $1 AND current_period_end > $2)
                   AS renewed,
               (SELECT count(*) FROM portal_billing_invoice WHERE merchant_id = $1 AND status = 'paid') AS paid,
               (SELECT count(*) FROM portal_sandbox_transaction WHERE merchant_id = $1 AND outcome = 'approved')
                   AS sales,
               (SELECT count(*) FROM portal_task WHERE merchant_id = $1 AND status = 'pending') AS pending
        """,
        merchant_id,
        end,
    )
    assert row is not None
    return dict(row)


async def test_two_workers_renew_a_thousand_subscriptions_once(
    portal_platform: Platform, owner: asyncpg.Connection, workers: list[Worker], tmp_path: Path
) -> None:
    slug = f"t-renew-{uuid.uuid4().hex[:6]}"
    tenant = await merchant(portal_platform, tmp_path, slug, '[isos.merchants.gateway]\nkey = "sandbox"')
    merchant_id = tenant.merchant.id
    started = datetime.now(UTC) - timedelta(days=31, hours=1)
    _, end = await seed(tenant, SUBSCRIPTIONS, started)
    next_end = add_periods(started, end, "month", 1, tz=TZ)
    env = worker_env(portal_platform, "postgresql", 2.0)
    env.update(PORTAL_TASK_LEASE_SECONDS=str(LEASE), PORTAL_TASK_POLL_INTERVAL="0.2", PORTAL_LOG_LEVEL="warning")
    began = time.monotonic()
    # The renewals job runs at once (its row may be waiting out 30 s from an earlier test's workers).
    await owner.execute("UPDATE portal_schedule SET next_run_at = now() WHERE name = $1", engine.JOB)
    # The merchant's audit chain is held here until the kill: the workers claim renewals and block
    # before committing any, so the kill always falls in the middle of the run (two workers renew
    # the thousand in a few seconds, faster than a poll on a loaded machine could see).
    chain = owner.transaction()
    await chain.start()
    await owner.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"portal-audit:{merchant_id}")
    for i in range(2):
        workers.append(Worker(tmp_path / f"worker-{i}.log"))
        await workers[-1].start(env)

    def output() -> str:
        return "\n".join(f"--- {worker.log.name}\n{worker.output()[-3000:]}" for worker in workers)

    claimed = "SELECT count(*) FROM portal_task WHERE merchant_id = $1 AND claimed_by IS NOT NULL"
    while await owner.fetchval(claimed, merchant_id) < 100:
        assert time.monotonic() - began < BOUND, output()
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # both workers' lanes reach the held chain with their claims
    victim = workers[0].process
    assert victim is not None
    victim.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(victim.wait(), 10) == -signal.SIGKILL
    at_kill = await progress(owner, merchant_id, end)
    await chain.commit()
    assert at_kill["sales"] < SUBSCRIPTIONS, "the kill fell in the middle of the run"
    workers.append(Worker(tmp_path / "worker-2.log"))
    await workers[-1].start(env)
    while True:
        state = await progress(owner, merchant_id, end)
        if state["renewed"] == state["paid"] == state["sales"] == SUBSCRIPTIONS and state["pending"] == 0:
            break
        assert time.monotonic() - began < BOUND, f"{state}\n{output()}"
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - began

    subs = await owner.fetch(
        "SELECT id, status, current_period_start, current_period_end FROM portal_billing_subscription "
        "WHERE merchant_id = $1",
        merchant_id,
    )
    bills = await owner.fetch(
        "SELECT subscription_id AS id, count(*) AS n, count(*) FILTER (WHERE status = 'paid') AS paid "
        "FROM portal_billing_invoice WHERE merchant_id = $1 GROUP BY subscription_id",
        merchant_id,
    )
    sales = await owner.fetch(
        "SELECT i.subscription_id AS id, count(*) AS n FROM portal_sandbox_transaction t "
        "JOIN portal_billing_invoice i ON i.merchant_id = t.merchant_id AND i.id = split_part(t.order_id, '-', 1) "
        "WHERE t.merchant_id = $1 AND t.outcome = 'approved' GROUP BY i.subscription_id",
        merchant_id,
    )
    renewals = await owner.fetch(
        "SELECT target_id AS id, count(*) AS n FROM portal_audit_event "
        "WHERE merchant_id = $1 AND type = 'subscription.renewed' GROUP BY target_id",
        merchant_id,
    )
    assert len(subs) == SUBSCRIPTIONS
    counted = {
        "invoices": {row["id"]: row["n"] for row in bills},
        "paid": {row["id"]: row["paid"] for row in bills},
        "sales": {row["id"]: row["n"] for row in sales},
        "renewed": {row["id"]: row["n"] for row in renewals},
    }
    wrong = {
        sub["id"]: {kind: found.get(sub["id"], 0) for kind, found in counted.items()}
        for sub in subs
        if any(found.get(sub["id"], 0) != 1 for found in counted.values())
    }
    assert not wrong, f"{len(wrong)} subscriptions not renewed exactly once, e.g. {list(wrong.items())[:3]}"
    assert {(row["status"], row["current_period_start"], row["current_period_end"]) for row in subs} == {
        ("active", end, next_end)
    }
    attempts = await owner.fetch(
        "SELECT outcome, count(*) AS n FROM portal_billing_payment_attempt WHERE merchant_id = $1 GROUP BY outcome",
        merchant_id,
    )
    assert [dict(row) for row in attempts] == [{"outcome": "approved", "n": SUBSCRIPTIONS}]
    tasks = await owner.fetch(
        "SELECT name, status, count(*) AS n FROM portal_task WHERE merchant_id = $1 "
        "GROUP BY name, status ORDER BY name",
        merchant_id,
    )
    assert [dict(row) for row in tasks] == [
        {"name": engine.CHARGE, "status": "succeeded", "n": SUBSCRIPTIONS},
        {"name": engine.RENEW, "status": "succeeded", "n": SUBSCRIPTIONS},
    ]
    assert elapsed < BOUND


async def test_a_lost_sale_answer_is_looked_up_and_recorded_once(
    portal_platform: Platform, owner: asyncpg.Connection, nmi: NmiServer, tmp_path: Path
) -> None:
    slug = f"t-renew-nmi-{uuid.uuid4().hex[:6]}"
    gateway = (
        '[isos.merchants.gateway]\nkey = "nmi"\n[isos.merchants.gateway.settings]\n'
        f'security_key = "{nmi.security_key}"\n'
        f'tokenization_key = "tok-public-1"\nbase_url = "{nmi.url}"\nretry_delay = 0\nmax_attempts = 2\n'
    )
    tenant = await merchant(portal_platform, tmp_path, slug, gateway)
    iso_id = tenant.merchant.iso_id
    customer = CustomerView(
        id=f"cus_{uuid.uuid4().hex[:20]}", merchant_id=tenant.merchant.id, email="lost@answer.test", name="Lou"
    )
    async with tenant_transaction(iso_id):
        await fetch(
            "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
            "VALUES ($1, $2, $3, $4, $4, $5)",
            customer.id, iso_id, tenant.merchant.id, customer.email, customer.name,
        )  # fmt: skip
    await methods.attach(portal_platform.gateways, tenant, customer, nmi.tokenize(), make_default=True)
    started = datetime.now(UTC) - timedelta(days=31, hours=1)
    async with tenant_transaction(iso_id):
        product = await catalog.create_product(tenant, name="Box", actor=SYSTEM)
        price = await catalog.create_price(
            tenant, product_id=product.id, currency="USD", unit_amount=3900, interval="month", actor=SYSTEM
        )
        sub = await subscriptions.create(tenant, customer_id=customer.id, price_id=price.id, now=started, actor=SYSTEM)
        first = await invoices.list(tenant, customer=customer.id, limit=10, starting_after=None)

    async def run_once() -> int:
        return await run_due_tasks(portal_platform, iso_id, "test-worker")

    # 1. the first invoice is charged (no faults yet)
    async with tenant_transaction(iso_id):
        assert await engine.queue_charge(first[0].id, tenant.merchant.id, attempt=1)
    assert await run_once() == 1
    assert len(nmi.charges) == 1
    # 2. the renewal: its sale's lookup beforehand answers (nothing yet); NMI charges, then drops the
    #    connection; the lookups after it are dropped too, so the outcome stays unknown
    nmi.delay(0, endpoint="query", times=1)
    nmi.drop(endpoint="transact", match={"type": "sale"})
    nmi.drop(endpoint="query", processed=False, times=10)
    async with tenant_transaction(iso_id):
        assert await engine.queue_due(merchant_id=tenant.merchant.id) == 1
    assert await run_once() == 1  # the renewal, which queues the charge
    async with tenant_transaction(iso_id):
        bills = await invoices.list(tenant, customer=customer.id, limit=10, starting_after=None)
    renewal = next(bill for bill in bills if bill.id != first[0].id)
    assert renewal.status == "open"
    order = f"{renewal.id}-1"
    assert await run_once() == 1
    assert [c.order_id for c in nmi.charges].count(order) == 1, "charged once, answer lost"
    task = await owner.fetchrow(
        "SELECT status, attempts, last_error FROM portal_task WHERE merchant_id = $1 AND dedupe_key = $2",
        tenant.merchant.id,
        f"{renewal.id}:1",
    )
    assert task is not None and task["status"] == "pending" and task["attempts"] == 1, dict(task or {})
    attempt = await owner.fetchrow(
        "SELECT outcome, order_id FROM portal_billing_payment_attempt WHERE invoice_id = $1", renewal.id
    )
    assert attempt is not None and (attempt["outcome"], attempt["order_id"]) == (None, order), "outcome unknown"
    # 3. the retry: the lookups answer again; the same order id finds the approval; nothing is charged again
    nmi.faults.clear()
    await owner.execute(
        "UPDATE portal_task SET next_attempt_at = now() WHERE merchant_id = $1 AND status = 'pending'",
        tenant.merchant.id,
    )
    assert await run_once() == 1
    assert [c.order_id for c in nmi.charges].count(order) == 1, "never charged twice"
    assert len(nmi.charges) == 2, "the first invoice and the renewal, once each"
    rows = await owner.fetch(
        "SELECT outcome, order_id, transaction_id FROM portal_billing_payment_attempt WHERE invoice_id = $1",
        renewal.id,
    )
    charged = next(c for c in nmi.charges if c.order_id == order)
    assert [dict(row) for row in rows] == [
        {"outcome": "approved", "order_id": order, "transaction_id": charged.transaction_id}
    ], "recorded once, with the sale NMI made"
    async with tenant_transaction(iso_id):
        paid = await invoices.get(tenant, renewal.id)
        renewed = await subscriptions.get(tenant, sub.id)
    assert (paid.status, paid.amount_paid) == ("paid", 3900)
    assert renewed.status == "active"
    events = await owner.fetch(
        "SELECT type FROM portal_audit_event WHERE merchant_id = $1 AND type = 'payment.succeeded'", tenant.merchant.id
    )
    assert len(events) == 2
