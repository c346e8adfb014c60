"""Subscription states: every transition the ledger allows, and every one it refuses, with its events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portal.billing import changes, invoices, subscriptions
from portal.billing.errors import BillingError, NotFoundError
from portal.billing.models import SUBSCRIPTION_STATUSES, SubscriptionStatus
from portal.db.engine import fetch
from support.billing import ACTOR, Ledger

NOW = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)


async def in_status(ny: Ledger, status: SubscriptionStatus, **kwargs: Any) -> str:
    """A subscription in ``status`` (put there directly: this test is about what may follow)."""
    subscription = await ny.subscribe(await ny.price(3900), now=NOW, **kwargs)
    async with ny.tx():
        await fetch("UPDATE portal_billing_subscription SET status = $2 WHERE id = $1", subscription.id, status)
    return subscription.id


async def act(ny: Ledger, action: str, subscription_id: str) -> subscriptions.Subscription:
    tenant, later = ny.tenant, NOW + timedelta(days=1)
    async with ny.tx():
        if action == "pause":
            return await subscriptions.pause(
                tenant, subscription_id, reason="holiday", resumes_at=later + timedelta(days=30), now=later,
                actor=ACTOR,
            )  # fmt: skip
        if action == "resume":
            return await subscriptions.resume(tenant, subscription_id, now=later, actor=ACTOR)
        if action in ("cancel", "schedule_cancel"):
            return await subscriptions.cancel(
                tenant, subscription_id, at_period_end=action == "schedule_cancel", reason="too_expensive",
                comment="later", now=later, actor=ACTOR,
            )  # fmt: skip
        if action == "change":
            return await changes.change(
                tenant, subscription_id, quantity=2, proration_behavior="none", now=later, actor=ACTOR
            )
        if action == "mark_unpaid":
            return await subscriptions.mark_unpaid(tenant, subscription_id, now=later, actor=ACTOR)
        if action == "renew":
            return (await subscriptions.renew(tenant, subscription_id, now=NOW + timedelta(days=40), actor=ACTOR))[0]
        raise AssertionError(action)


EXPECTED: dict[str, tuple[set[str], str | None, str]] = {
    # action: (statuses it may start from, the status after, the event)
    "pause": ({"trialing", "active", "past_due"}, "paused", "subscription.paused"),
    "resume": ({"paused"}, "active", "subscription.resumed"),
    "cancel": ({"trialing", "active", "past_due", "paused", "unpaid"}, "canceled", "subscription.canceled"),
    "schedule_cancel": ({"trialing", "active", "past_due", "paused"}, None, "subscription.cancel_scheduled"),
    "change": ({"trialing", "active", "past_due", "paused"}, None, "subscription.updated"),
    "mark_unpaid": ({"past_due"}, "unpaid", "subscription.updated"),
    "renew": ({"trialing", "active", "past_due", "paused"}, None, "subscription.renewed"),
}


@pytest.mark.parametrize("status", SUBSCRIPTION_STATUSES)
@pytest.mark.parametrize("action", sorted(EXPECTED))
async def test_each_action_from_each_status(ny: Ledger, action: str, status: SubscriptionStatus) -> None:
    allowed, after, event = EXPECTED[action]
    subscription_id = await in_status(ny, status)
    before = await ny.events(subscription_id)
    if status not in allowed:
        with pytest.raises(BillingError) as refused:
            await act(ny, action, subscription_id)
        assert refused.value.code == "invalid_transition"
        assert await ny.events(subscription_id) == before
        async with ny.tx():
            assert (await subscriptions.get(ny.tenant, subscription_id)).status == status
        return
    result = await act(ny, action, subscription_id)
    if after is not None:
        assert result.status == after
    assert (await ny.events(subscription_id))[len(before) :][-1] == event


async def test_create_bills_the_first_period_and_a_trial_bills_nothing(ny: Ledger) -> None:
    price = await ny.price(3900, name="Monthly Bread Box")
    subscription = await ny.subscribe(price, now=NOW)
    assert subscription.status == "active"
    assert subscription.current_period_end == datetime(2026, 2, 10, 15, 0, tzinfo=UTC)
    assert await ny.events(subscription.id) == ["subscription.created"]
    async with ny.tx():
        [invoice] = await invoices.list(ny.tenant, subscription=subscription.id)
    assert (invoice.status, invoice.total, invoice.amount_due, invoice.number is not None) == ("open", 3900, 3900, True)
    assert invoice.lines[0].description == "Monthly Bread Box"
    assert (invoice.lines[0].period_start, invoice.lines[0].period_end) == (NOW, subscription.current_period_end)

    trial = await ny.subscribe(price, now=NOW, trial_end=NOW + timedelta(days=14))
    assert trial.status == "trialing" and trial.current_period_end == trial.billing_anchor == NOW + timedelta(days=14)
    async with ny.tx():
        assert await invoices.list(ny.tenant, subscription=trial.id) == []
        renewed, invoice = await subscriptions.renew(ny.tenant, trial.id, now=NOW + timedelta(days=14), actor=ACTOR)
    assert renewed.status == "active" and invoice is not None and invoice.total == 3900
    assert renewed.current_period_end == datetime(2026, 2, 24, 15, 0, tzinfo=UTC)


async def test_a_scheduled_cancel_ends_the_subscription_at_period_end_and_can_be_undone(ny: Ledger) -> None:
    price = await ny.price(1000)
    subscription = await ny.subscribe(price, now=NOW)
    async with ny.tx():
        scheduled = await subscriptions.cancel(ny.tenant, subscription.id, at_period_end=True, now=NOW, actor=ACTOR)
        assert scheduled.cancel_at_period_end and scheduled.status == "active"
        with pytest.raises(BillingError):
            await subscriptions.cancel(ny.tenant, subscription.id, at_period_end=True, now=NOW, actor=ACTOR)
        undone = await subscriptions.undo_cancel(ny.tenant, subscription.id, now=NOW, actor=ACTOR)
        assert not undone.cancel_at_period_end
        with pytest.raises(BillingError) as refused:
            await subscriptions.undo_cancel(ny.tenant, subscription.id, now=NOW, actor=ACTOR)
        assert refused.value.code == "invalid_transition"
        await subscriptions.cancel(ny.tenant, subscription.id, at_period_end=True, now=NOW, actor=ACTOR)
        ended, invoice = await subscriptions.renew(
            ny.tenant, subscription.id, now=subscription.current_period_end, actor=ACTOR
        )
    assert invoice is None and ended.status == "canceled" and ended.canceled_at == subscription.current_period_end
    assert await ny.events(subscription.id) == [
        "subscription.created", "subscription.cancel_scheduled", "subscription.cancel_unscheduled",
        "subscription.cancel_scheduled", "subscription.canceled",
    ]  # fmt: skip


async def test_a_paused_subscription_rolls_on_without_invoices(ny: Ledger) -> None:
    subscription = await ny.subscribe(await ny.price(1000), now=NOW)
    async with ny.tx():
        await subscriptions.pause(ny.tenant, subscription.id, reason="travel", resumes_at=None, now=NOW, actor=ACTOR)
        rolled, invoice = await subscriptions.renew(
            ny.tenant, subscription.id, now=subscription.current_period_end, actor=ACTOR
        )
        assert invoice is None and rolled.status == "paused"
        assert rolled.current_period_start == subscription.current_period_end
        with pytest.raises(BillingError) as early:
            await subscriptions.renew(ny.tenant, subscription.id, now=rolled.current_period_start, actor=ACTOR)
        assert early.value.code == "not_due"
        resumed = await subscriptions.resume(ny.tenant, subscription.id, now=rolled.current_period_start, actor=ACTOR)
        assert (resumed.status, resumed.pause_reason, resumed.paused_at) == ("active", None, None)
        assert len(await invoices.list(ny.tenant, subscription=subscription.id)) == 1


async def test_unknown_and_foreign_ids_read_as_missing(ny: Ledger, auckland: Ledger) -> None:
    subscription = await ny.subscribe(await ny.price(1000), now=NOW)
    async with auckland.tx():
        with pytest.raises(NotFoundError):
            await subscriptions.get(auckland.tenant, subscription.id)
        with pytest.raises(NotFoundError):
            await subscriptions.cancel(auckland.tenant, subscription.id, at_period_end=False, now=NOW, actor=ACTOR)


async def test_listing_by_customer_and_status_with_a_cursor(ny: Ledger) -> None:
    customer = await ny.customer()
    price = await ny.price(500)
    made = [await ny.subscribe(price, now=NOW, customer=customer) for _ in range(3)]
    async with ny.tx():
        await subscriptions.cancel(ny.tenant, made[0].id, at_period_end=False, now=NOW, actor=ACTOR)
        first = await subscriptions.list(ny.tenant, customer=customer.id, limit=2)
        rest = await subscriptions.list(ny.tenant, customer=customer.id, limit=2, starting_after=first[-1].id)
        canceled = await subscriptions.list(ny.tenant, customer=customer.id, status="canceled")
    assert [s.id for s in first + rest] == [s.id for s in reversed(made)]
    assert [s.id for s in canceled] == [made[0].id]


async def test_a_failed_multi_step_write_leaves_nothing(ny: Ledger) -> None:
    customer = await ny.customer()
    price = await ny.price(2500)
    with pytest.raises(RuntimeError):
        async with ny.tx():
            await subscriptions.create(ny.tenant, customer_id=customer.id, price_id=price.id, now=NOW, actor=ACTOR)
            raise RuntimeError("the request failed after the subscription was written")
    assert await ny.count("portal_billing_subscription", customer_id=customer.id) == 0
    assert await ny.count("portal_billing_invoice", customer_id=customer.id) == 0
    assert await ny.count("portal_audit_event", customer_id=customer.id) == 0
