"""Proration to the second, rounded once, against worked examples; ``change`` bills the preview's lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.billing import changes, engine, invoices, proration, subscriptions
from portal.billing.errors import BillingError
from portal.billing.models import Subscription
from portal.ids import new_id
from portal.tasks.durable import TaskRun
from support.billing import ACTOR, Ledger

# New York, April 2026 (all EDT): the period is exactly 30 days, 2,592,000 seconds.
START = datetime(2026, 4, 1, 4, 0, tzinfo=UTC)


async def test_upgrade_a_third_of_the_way_through_the_period(ny: Ledger) -> None:
    """$30.00 → $50.00 after 10 of 30 days: 20/30 of the period remains.

    credit  = 3000 * 20/30 = 2000.000  → -2000
    charge  = 5000 * 20/30 = 3333.333
    net     = 3333.333 - 2000 = 1333.333 → 1333 (rounded once); charge line = 1333 + 2000 = 3333
    """
    old, new = await ny.price(3000, name="Basic"), await ny.price(5000, name="Plus")
    subscription = await ny.subscribe(old, now=START)
    at = START + timedelta(days=10)
    async with ny.tx():
        preview = await proration.preview_change(ny.tenant, subscription.id, price_id=new.id, at=at)
    assert [(line.amount, line.proration) for line in preview.lines] == [(-2000, True), (3333, True)]
    assert preview.amount_due_now == 1333 and preview.currency == "USD"
    assert preview.lines[0].description == "Unused time on Basic after 11 Apr 2026"
    assert preview.lines[1].description == "Remaining time on Plus after 11 Apr 2026"
    assert all((line.period_start, line.period_end) == (at, START + timedelta(days=30)) for line in preview.lines)


async def test_quantity_change_at_an_odd_second_is_rounded_once(ny: Ledger) -> None:
    """$9.99 quantity 1 → 3 at 10 days 7 h 13 min 20 s: 1,702,000 of 2,592,000 seconds remain.

    credit = 999 * 1702000/2592000  = 655.979166… → 656
    new    = 2997 * 1702000/2592000 = 1967.9375
    net    = 1967.9375 - 655.979166… = 1311.958333… → 1312; charge line = 1312 + 656 = 1968
    """
    price = await ny.price(999, name="Seat")
    subscription = await ny.subscribe(price, now=START)
    at = START + timedelta(days=10, hours=7, minutes=13, seconds=20)
    async with ny.tx():
        preview = await proration.preview_change(ny.tenant, subscription.id, quantity=3, at=at)
    assert [line.amount for line in preview.lines] == [-656, 1968]
    assert [(line.quantity, line.unit_amount) for line in preview.lines] == [(1, -656), (3, 656)]
    assert preview.amount_due_now == 1312


async def test_always_invoice_bills_exactly_the_preview(ny: Ledger) -> None:
    old, new = await ny.price(3000, name="Basic"), await ny.price(5000, name="Plus")
    subscription = await ny.subscribe(old, now=START)
    at = START + timedelta(days=10)
    async with ny.tx():
        preview = await proration.preview_change(ny.tenant, subscription.id, price_id=new.id, at=at)
        changed = await changes.change(
            ny.tenant, subscription.id, price_id=new.id, proration_behavior="always_invoice", now=at, actor=ACTOR
        )
        billed = (await invoices.list(ny.tenant, subscription=subscription.id, limit=1))[0]
    assert changed.price == new.id and changed.current_period_end == subscription.current_period_end
    assert [(line.description, line.amount) for line in billed.lines] == [
        (line.description, line.amount) for line in preview.lines
    ]
    assert (billed.status, billed.amount_due) == ("open", preview.amount_due_now)


async def test_create_prorations_waits_for_the_renewal_and_none_bills_nothing(ny: Ledger) -> None:
    old, new = await ny.price(3000, name="Basic"), await ny.price(5000, name="Plus")
    subscription = await ny.subscribe(old, now=START)
    at = START + timedelta(days=10)
    async with ny.tx():
        await changes.change(
            ny.tenant, subscription.id, price_id=new.id, proration_behavior="create_prorations", now=at, actor=ACTOR
        )
        [pending] = await invoices.list(ny.tenant, subscription=subscription.id, status="draft")
        assert [line.amount for line in pending.lines] == [-2000, 3333]
        _, renewal = await subscriptions.renew(
            ny.tenant, subscription.id, now=subscription.current_period_end, actor=ACTOR
        )
        assert renewal is not None and renewal.id == pending.id
        assert [line.amount for line in renewal.lines] == [-2000, 3333, 5000] and renewal.amount_due == 6333
        await changes.change(
            ny.tenant, subscription.id, price_id=old.id, proration_behavior="none", now=at + timedelta(days=31),
            actor=ACTOR,
        )  # fmt: skip
        assert await invoices.list(ny.tenant, subscription=subscription.id, status="draft") == []


async def test_a_downgrade_credits_more_than_it_charges(ny: Ledger) -> None:
    """$50.00 → $30.00 half-way: -2500 + 1500; nothing is due now (the net is a credit)."""
    old, new = await ny.price(5000, name="Plus"), await ny.price(3000, name="Basic")
    subscription = await ny.subscribe(old, now=START)
    async with ny.tx():
        preview = await proration.preview_change(
            ny.tenant, subscription.id, price_id=new.id, at=START + timedelta(days=15)
        )
    assert [line.amount for line in preview.lines] == [-2500, 1500] and preview.amount_due_now == 0


async def test_yen_has_no_minor_units(ny: Ledger) -> None:
    """¥1,000 → ¥3,000 with 20 of 30 days left: credit 666.67 → -667; net 1333.33 → 1333; charge 2000."""
    old, new = await ny.price(1000, currency="JPY"), await ny.price(3000, currency="JPY")
    subscription = await ny.subscribe(old, now=START)
    async with ny.tx():
        preview = await proration.preview_change(
            ny.tenant, subscription.id, price_id=new.id, at=START + timedelta(days=10)
        )
    assert [line.amount for line in preview.lines] == [-667, 2000]
    assert (preview.amount_due_now, preview.currency) == (1333, "JPY")


async def test_refused_changes(ny: Ledger) -> None:
    usd, eur = await ny.price(3000), await ny.price(3000, currency="EUR")
    subscription = await ny.subscribe(usd, now=START)
    async with ny.tx():
        for kwargs, code in [
            ({"price_id": eur.id}, "currency_mismatch"),
            ({"price_id": usd.id}, "no_change"),
            ({"quantity": 0}, "invalid_quantity"),
        ]:
            with pytest.raises(BillingError) as refused:
                await proration.preview_change(ny.tenant, subscription.id, at=START, **kwargs)  # type: ignore[arg-type]
            assert refused.value.code == code


async def test_another_interval_restarts_the_period(ny: Ledger) -> None:
    monthly, yearly = await ny.price(3000, name="Monthly"), await ny.price(30000, interval="year", name="Yearly")
    subscription = await ny.subscribe(monthly, now=START)
    at = START + timedelta(days=10)
    async with ny.tx():
        changed = await changes.change(
            ny.tenant, subscription.id, price_id=yearly.id, proration_behavior="none", now=at, actor=ACTOR
        )
        billed = (await invoices.list(ny.tenant, subscription=subscription.id, limit=1))[0]
    assert (changed.current_period_start, changed.billing_anchor) == (at, at)
    assert changed.current_period_end == datetime(2027, 4, 11, 4, 0, tzinfo=UTC)
    assert [line.amount for line in billed.lines] == [-2000, 30000] and billed.amount_due == 28000


async def test_the_engine_s_renewal_batch_bills_the_pending_prorations(ny: Ledger) -> None:
    """The batch reads the drafts of all its subscriptions ahead; the renewal still takes them up."""
    old, new = await ny.price(3000, name="Basic"), await ny.price(5000, name="Plus")
    changed, plain = await ny.subscribe(old, now=START), await ny.subscribe(old, now=START)
    async with ny.tx():
        await changes.change(
            ny.tenant, changed.id, price_id=new.id, proration_behavior="create_prorations",
            now=START + timedelta(days=10), actor=ACTOR,
        )  # fmt: skip
        [pending] = await invoices.list(ny.tenant, subscription=changed.id, status="draft")

    def run(subscription: Subscription) -> TaskRun:
        return TaskRun(
            id=new_id("task"), name=engine.RENEW, iso_id=ny.tenant.merchant.iso_id, merchant_id=ny.tenant.merchant.id,
            args={"subscription": subscription.id, "at": subscription.current_period_end.isoformat()}, attempt=1,
            final_attempt=False, platform=ny.platform,
        )  # fmt: skip

    assert await engine.renew.run_batch([run(changed), run(plain)]) == [None, None]  # type: ignore[misc]
    async with ny.tx():
        renewal = await invoices.get(ny.tenant, pending.id)
        [plain_renewal, _first] = await invoices.list(ny.tenant, subscription=plain.id)
    assert renewal.status == "open" and [line.amount for line in renewal.lines] == [-2000, 3333, 5000]
    assert [line.amount for line in plain_renewal.lines] == [3000]
