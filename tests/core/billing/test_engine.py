"""The renewal and charge engine (``portal.billing.engine``) against the test database and the sandbox.

Each test makes subscriptions whose period ended (created a month and an hour ago), queues
what is due as the scheduled job does (``queue_due`` in this module's own ISO, so other tests'
subscriptions are left alone) and runs the durable tasks with the worker's runner
(``run_due_tasks``) until none is left.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from portal.billing import catalog, engine, invoices, subscriptions
from portal.billing.models import Subscription
from portal.db.engine import fetch, json_value, tenant_transaction
from portal.events.bus import SYSTEM
from portal.events.verify import verify_chain
from portal.payments import methods
from portal.payments.sandbox import store
from portal.payments.sandbox.cards import check_card
from portal.platform import Platform
from portal.tasks.durable import PermanentTaskError, TaskRun, run_due_tasks
from portal.tenancy.models import CustomerView, Tenant
from portal.testing import BASE_DOMAIN, apply_tenants

RUN = uuid.uuid4().hex[:6]
SHOP = f"eng-shop-{RUN}"
APPROVES, DECLINES = "4111111111111111", "4000000000000341"  # the second is vaulted, then declines sales


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shop(portal_platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Tenant:
    tenants = f"""
[[isos]]
slug = "eng-iso-{RUN}"
name = "Engine ISO"

[[isos.merchants]]
slug = "{SHOP}"
name = "Engine shop"
timezone = "America/New_York"
[isos.merchants.gateway]
key = "sandbox"
"""
    await apply_tenants(portal_platform, tenants, tmp_path_factory.mktemp("engine"))
    tenant = await portal_platform.tenants.resolve(f"{SHOP}.{BASE_DOMAIN}")
    assert tenant is not None
    return tenant


async def customer_with_card(platform: Platform, tenant: Tenant, number: str = APPROVES) -> CustomerView:
    merchant = tenant.merchant
    customer = CustomerView(
        id=f"cus_{uuid.uuid4().hex[:20]}", merchant_id=merchant.id, email=f"{uuid.uuid4().hex[:8]}@eng.test", name="Pat"
    )
    now = datetime.now(UTC)
    details = check_card(number, f"12/{(now.year + 3) % 100:02d}", "123", today=now.date(), cvv_required=False)
    async with tenant_transaction(merchant.iso_id):
        await fetch(
            "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
            "VALUES ($1, $2, $3, $4, $4, $5)",
            customer.id, merchant.iso_id, merchant.id, customer.email, customer.name,
        )  # fmt: skip
        token = await store.insert_token(
            merchant.iso_id, merchant.id, details, now=now, expires_at=now + timedelta(hours=1)
        )
    await methods.attach(platform.gateways, tenant, customer, token, make_default=True)
    return customer


async def subscribe(tenant: Tenant, customer: CustomerView, *, started: datetime, amount: int = 3900) -> Subscription:
    async with tenant_transaction(tenant.merchant.iso_id):
        product = await catalog.create_product(tenant, name="Monthly Bread Box", actor=SYSTEM)
        price = await catalog.create_price(
            tenant, product_id=product.id, currency="USD", unit_amount=amount, interval="month", actor=SYSTEM
        )
        return await subscriptions.create(tenant, customer_id=customer.id, price_id=price.id, now=started, actor=SYSTEM)


async def work(platform: Platform, tenant: Tenant) -> int:
    """Queue what is due in the shop's ISO and run its tasks until none is left, as a worker would."""
    ran = 0
    for _ in range(20):
        async with tenant_transaction(tenant.merchant.iso_id):
            queued = await engine.queue_due(merchant_id=tenant.merchant.id)
        done = await run_due_tasks(platform, tenant.merchant.iso_id, "test-worker")
        ran += done
        if not queued and not done:
            return ran
    raise AssertionError("work kept coming")


async def state(tenant: Tenant, sub_id: str) -> tuple[Subscription, list[Any]]:
    async with tenant_transaction(tenant.merchant.iso_id):
        sub = await subscriptions.get(tenant, sub_id)
        found = await invoices.list(tenant, customer=sub.customer, limit=100, starting_after=None)
    return sub, sorted(found, key=lambda invoice: invoice.created_at)


async def events_of(tenant: Tenant, target: str) -> list[dict[str, Any]]:
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT type, data FROM portal_audit_event WHERE merchant_id = $1 AND target_id = $2 ORDER BY seq",
            tenant.merchant.id,
            target,
        )
    return [{"type": row["type"], "data": json_value(row["data"])} for row in rows]


async def sandbox_sales(tenant: Tenant, order_prefix: str) -> list[dict[str, Any]]:
    async with tenant_transaction(tenant.merchant.iso_id):
        return await fetch(
            "SELECT order_id, outcome FROM portal_sandbox_transaction "
            "WHERE merchant_id = $1 AND order_id LIKE $2 || '%'",
            tenant.merchant.id,
            order_prefix,
        )


def month_and_an_hour_ago() -> datetime:
    """A start whose monthly period ended (31 days and an hour ago: a month is at most 31 days)."""
    return datetime.now(UTC) - timedelta(days=31, hours=1)


async def test_a_due_subscription_is_renewed_once_and_charged(portal_platform: Platform, shop: Tenant) -> None:
    customer = await customer_with_card(portal_platform, shop)
    sub = await subscribe(shop, customer, started=month_and_an_hour_ago())
    assert sub.current_period_end <= datetime.now(UTC)
    async with tenant_transaction(shop.merchant.iso_id):
        first = await engine.queue_due(merchant_id=shop.merchant.id)
        again = await engine.queue_due(merchant_id=shop.merchant.id)
    assert first >= 2 and again == 0, "the first invoice's charge and the renewal, each queued once"
    await work(portal_platform, shop)
    renewed, bills = await state(shop, sub.id)
    assert renewed.status == "active"
    assert renewed.current_period_start == sub.current_period_end
    assert renewed.current_period_end > datetime.now(UTC)
    assert [(bill.status, bill.total, bill.amount_paid) for bill in bills] == [("paid", 3900, 3900)] * 2
    assert bills[1].lines[0].period_start == sub.current_period_end
    for bill in bills:
        sales = await sandbox_sales(shop, bill.id)
        assert [sale["outcome"] for sale in sales] == ["approved"], "one approved sale per invoice"
    # Nothing more is due: running again renews nothing and charges nothing.
    assert await work(portal_platform, shop) == 0
    assert len((await state(shop, sub.id))[1]) == 2
    kinds = [event["type"] for event in await events_of(shop, sub.id)]
    assert kinds.count("subscription.renewed") == 1


async def test_the_scheduled_job_queues_renewals_in_every_iso(portal_platform: Platform, shop: Tenant) -> None:
    customer = await customer_with_card(portal_platform, shop)
    sub = await subscribe(shop, customer, started=month_and_an_hour_ago())
    assert engine.JOB in __import__("portal.tasks.schedules", fromlist=["SCHEDULES"]).SCHEDULES
    assert await engine.renewals(portal_platform) >= 2
    async with tenant_transaction(shop.merchant.iso_id):
        keys = await fetch(
            "SELECT name, dedupe_key FROM portal_task WHERE merchant_id = $1 AND dedupe_key LIKE $2 || '%'",
            shop.merchant.id,
            sub.id,
        )
    assert keys == [{"name": engine.RENEW, "dedupe_key": f"{sub.id}:{sub.current_period_end.isoformat()}"}]
    await work(portal_platform, shop)
    assert (await state(shop, sub.id))[0].current_period_end > datetime.now(UTC)


async def test_the_job_queues_a_burst_page_after_page_in_one_run(
    portal_platform: Platform, shop: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first of the month: more subscriptions due than one page holds are all queued in one run.
    customer = await customer_with_card(portal_platform, shop)
    subs = [await subscribe(shop, customer, started=month_and_an_hour_ago()) for _ in range(5)]
    merchant = shop.merchant
    async with tenant_transaction(merchant.iso_id):
        first, page = await engine.queue_due_page(merchant_id=merchant.id, limit=2)
        assert page is not None and first >= 2
        second, page = await engine.queue_due_page(merchant_id=merchant.id, after=page, limit=2)
        assert page is not None and second == 2, "the next two, after the first page's last"
        third, page = await engine.queue_due_page(merchant_id=merchant.id, after=page, limit=2)
        assert page is None and third == 1, "the last page is not full"
    await work(portal_platform, shop)
    more = [await subscribe(shop, customer, started=month_and_an_hour_ago()) for _ in range(5)]
    monkeypatch.setattr(engine, "CLAIM_LIMIT", 2)
    assert await engine.renewals(portal_platform) >= 5
    async with tenant_transaction(merchant.iso_id):
        keys = await fetch(
            "SELECT dedupe_key FROM portal_task WHERE name = $1 AND merchant_id = $2", engine.RENEW, merchant.id
        )
    queued = {row["dedupe_key"].split(":", 1)[0] for row in keys}
    assert {sub.id for sub in subs + more} <= queued, "every due subscription queued, five of them in one run"
    await work(portal_platform, shop)
    for sub in subs + more:
        assert (await state(shop, sub.id))[0].current_period_end > datetime.now(UTC)


async def test_a_scheduled_cancellation_takes_effect_at_period_end(portal_platform: Platform, shop: Tenant) -> None:
    customer = await customer_with_card(portal_platform, shop)
    started = month_and_an_hour_ago()
    sub = await subscribe(shop, customer, started=started)
    async with tenant_transaction(shop.merchant.iso_id):
        await subscriptions.cancel(
            shop, sub.id, at_period_end=True, reason="too_expensive", now=started + timedelta(days=3), actor=SYSTEM
        )
    await work(portal_platform, shop)
    ended, bills = await state(shop, sub.id)
    assert ended.status == "canceled" and ended.canceled_at == sub.current_period_end
    assert not ended.cancel_at_period_end
    assert [bill.status for bill in bills] == ["paid"], "the first period was charged; nothing after the end"
    kinds = [event["type"] for event in await events_of(shop, sub.id)]
    assert kinds[-1] == "subscription.canceled" and "subscription.renewed" not in kinds


async def test_a_pause_skips_the_renewal_and_ends_at_resumes_at(portal_platform: Platform, shop: Tenant) -> None:
    customer = await customer_with_card(portal_platform, shop)
    started = month_and_an_hour_ago()
    sub = await subscribe(shop, customer, started=started)
    # The period ended in a pause made two days in, until ten minutes ago (after the period end).
    async with tenant_transaction(shop.merchant.iso_id):
        await subscriptions.pause(
            shop, sub.id, reason="vacation", resumes_at=datetime.now(UTC) - timedelta(minutes=10),
            now=started + timedelta(days=2), actor=SYSTEM,
        )  # fmt: skip
    await work(portal_platform, shop)
    resumed, _ = await state(shop, sub.id)
    assert resumed.status == "active" and resumed.resumes_at is None
    assert resumed.current_period_start == sub.current_period_end, "the paused period rolled on"
    async with tenant_transaction(shop.merchant.iso_id):
        bills = await fetch("SELECT status FROM portal_billing_invoice WHERE subscription_id = $1", sub.id)
    assert [bill["status"] for bill in bills] == ["paid"], "no invoice for the period that began in the pause"
    kinds = [event["type"] for event in await events_of(shop, sub.id)]
    assert kinds.index("subscription.renewed") < kinds.index("subscription.resumed")


async def test_a_declined_charge_makes_the_subscription_past_due(portal_platform: Platform, shop: Tenant) -> None:
    customer = await customer_with_card(portal_platform, shop, DECLINES)
    sub = await subscribe(shop, customer, started=datetime.now(UTC) - timedelta(hours=1))
    await work(portal_platform, shop)
    failed, bills = await state(shop, sub.id)
    assert failed.status == "past_due"
    assert [bill.status for bill in bills] == ["open"]
    events = await events_of(shop, bills[0].id)
    payment_failed = [event["data"] for event in events if event["type"] == "invoice.payment_failed"]
    assert len(payment_failed) == 1
    assert payment_failed[0]["classification"] == "retryable"  # NMI 201 "Do not honor": a soft decline
    assert payment_failed[0]["attempt"]["response_code"] == 201
    assert [sale["outcome"] for sale in await sandbox_sales(shop, bills[0].id)] == ["declined"]
    assert await work(portal_platform, shop) == 0, "a declined invoice is not charged again by the engine"


async def test_a_batch_of_renewals_renews_each_and_fails_only_the_run_whose_merchant_is_gone(
    portal_platform: Platform, shop: Tenant
) -> None:
    started = datetime.now(UTC) - timedelta(days=31, hours=1)
    subs = [await subscribe(shop, await customer_with_card(portal_platform, shop), started=started) for _ in range(3)]

    def run(subscription: str, merchant_id: str | None, n: int) -> TaskRun:
        return TaskRun(
            id=f"task_batch_{RUN}_{n}", name=engine.RENEW, iso_id=shop.merchant.iso_id, merchant_id=merchant_id,
            args={"subscription": subscription, "at": started.isoformat()}, attempt=1, final_attempt=False,
            platform=portal_platform,
        )  # fmt: skip

    runs = [run(sub.id, shop.merchant.id, n) for n, sub in enumerate(subs)]
    runs.insert(1, run(subs[0].id, "mer_gone", 9))
    outcomes = await engine.renew.run_batch(runs)  # type: ignore[misc]
    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    assert isinstance(outcomes[1], PermanentTaskError)
    for sub in subs:
        renewed, found = await state(shop, sub.id)
        assert renewed.current_period_start > started and len(found) == 2  # the first period's and the renewal's
        assert [event["type"] for event in await events_of(shop, sub.id)][-1] == "subscription.renewed"
    async with tenant_transaction(shop.merchant.iso_id):
        assert (await verify_chain(shop.merchant.id)).ok
    # Run again (a batch whose worker died after committing): nothing is renewed twice.
    assert await engine.renew.run_batch(runs[:1]) == [None]  # type: ignore[misc]
    assert len((await state(shop, subs[0].id))[1]) == 2
