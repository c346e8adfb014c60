"""Subscriptions: create, change, pause, resume, cancel, and the period changes the engine drives.

States follow Stripe (``trialing, active, past_due, paused, canceled, unpaid``); every change
checks :data:`TRANSITIONS` and raises ``BillingError('invalid_transition')`` otherwise, and
emits its ``subscription.*`` event in the caller's transaction.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import msgspec

from portal.billing import invoices
from portal.billing.calendar import add_periods
from portal.billing.catalog import get_price, get_product
from portal.billing.errors import BillingError, NotFoundError
from portal.billing.events import SubscriptionEvent
from portal.billing.models import (
    Invoice,
    LineInput,
    Price,
    Subscription,
    SubscriptionStatus,
)
from portal.billing.rows import page, require_transaction
from portal.db.engine import fetch, transaction_state
from portal.events.bus import Actor, emit
from portal.ids import new_id
from portal.tenancy.models import Tenant

COLUMNS = (
    "id, merchant_id AS merchant, customer_id AS customer, price_id AS price, quantity, status, "
    "current_period_start, current_period_end, billing_anchor, cancel_at_period_end, canceled_at, "
    "cancellation_reason, cancellation_comment, pause_reason, paused_at, resumes_at, default_payment_method, "
    "trial_end, created_at"
)
LIVE: frozenset[SubscriptionStatus] = frozenset({"trialing", "active", "past_due"})

TRANSITIONS: dict[str, frozenset[SubscriptionStatus]] = {
    "change": frozenset({"trialing", "active", "past_due", "paused"}),
    "pause": LIVE,
    "resume": frozenset({"paused"}),
    "cancel": frozenset({"trialing", "active", "past_due", "paused", "unpaid"}),
    "schedule_cancel": frozenset({"trialing", "active", "past_due", "paused"}),
    "undo_cancel": frozenset({"trialing", "active", "past_due", "paused"}),
    "renew": frozenset({"trialing", "active", "past_due", "paused"}),
    "fail_payment": frozenset({"trialing", "active"}),
    "recover": frozenset({"past_due", "unpaid"}),
    "mark_unpaid": frozenset({"past_due"}),
}
"""Action to the statuses it may start from (see the table in ``docs/billing.md``)."""


def check_transition(subscription: Subscription, action: str) -> None:
    """Raise ``BillingError('invalid_transition')`` unless ``action`` may start from the status."""
    if subscription.status not in TRANSITIONS[action]:
        raise BillingError(
            "invalid_transition", f"cannot {action.replace('_', ' ')} a {subscription.status} subscription"
        )


def _subscription(row: dict[str, Any]) -> Subscription:
    return msgspec.convert(row, Subscription)


async def get(tenant: Tenant, subscription_id: str, *, lock: bool = False) -> Subscription:
    """One of the merchant's subscriptions; ``lock`` holds its row until the transaction ends."""
    require_transaction(tenant)
    rows = await fetch(
        f"SELECT {COLUMNS} FROM portal_billing_subscription WHERE merchant_id = $1 AND id = $2"
        + (" FOR UPDATE" if lock else ""),
        tenant.merchant.id,
        subscription_id,
    )
    if not rows:
        raise NotFoundError("subscription", subscription_id)
    return _subscription(rows[0])


async def lock_all(subscription_ids: builtins.list[str]) -> dict[str, Subscription]:
    """Lock these subscriptions of the current ISO (of any of its merchants), in id order; found ones by id.

    Taking many in one statement, in one order, is what lets a batch hold them all before it
    emits anything (see :func:`portal.db.batch.in_one_transaction`).
    """
    rows = await fetch(
        f"SELECT {COLUMNS} FROM portal_billing_subscription WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
        subscription_ids,
    )
    return {row["id"]: _subscription(row) for row in rows}


async def list(
    tenant: Tenant,
    *,
    customer: str | None = None,
    status: SubscriptionStatus | None = None,
    limit: int = 10,
    starting_after: str | None = None,
) -> builtins.list[Subscription]:
    """The merchant's subscriptions, newest first, optionally one customer's or one status's."""
    require_transaction(tenant)
    rows = await page(
        "portal_billing_subscription", COLUMNS, tenant.merchant.id, {"customer_id": customer, "status": status},
        limit=limit, starting_after=starting_after,
    )  # fmt: skip
    return [_subscription(row) for row in rows]


async def _update(tenant: Tenant, subscription_id: str, now: datetime, **changes: Any) -> Subscription:
    names = builtins.list(changes)
    assignments = ", ".join(f"{name} = ${index + 3}" for index, name in enumerate(names))
    rows = await fetch(
        f"UPDATE portal_billing_subscription SET {assignments}, updated_at = $2 WHERE id = $1 RETURNING {COLUMNS}",
        subscription_id, now, *changes.values(),
    )  # fmt: skip
    return _subscription(rows[0])


async def _emit(
    tenant: Tenant,
    event_type: str,
    subscription: Subscription,
    actor: Actor,
    *,
    previous: SubscriptionStatus | None,
    invoice: str | None = None,
    before: Subscription | None = None,
) -> None:
    """Emit ``event_type``; with ``before``, the audit record keeps the fields that changed, old and new."""
    payload = SubscriptionEvent(subscription=subscription, previous_status=previous, invoice=invoice)
    old, new = changed_fields(before, subscription) if before is not None else (None, None)
    await emit(
        tenant.merchant, event_type, payload, actor=actor, target=("subscription", subscription.id),
        customer_id=subscription.customer, before=old, after=new, enabled_plugins=tenant.enabled_plugins,
    )  # fmt: skip


def changed_fields(before: Subscription, after: Subscription) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields that differ between two versions of a subscription, as JSON values: (old, new)."""
    old, new = msgspec.to_builtins(before), msgspec.to_builtins(after)
    names = [name for name in new if old.get(name) != new[name]]
    return {name: old.get(name) for name in names}, {name: new[name] for name in names}


def period_end(tenant: Tenant, price: Price, anchor: datetime, start: datetime) -> datetime:
    """The end of the period of ``price`` starting at ``start`` (calendar rules in the merchant's zone)."""
    return add_periods(anchor, start, price.interval, price.interval_count, tz=tenant.merchant.timezone)


async def period_line(tenant: Tenant, price: Price, quantity: int, start: datetime, end: datetime) -> LineInput:
    """The invoice line of one full period of ``price``."""
    product = await get_product(tenant, price.product)
    return LineInput(
        description=f"{quantity} \u00d7 {product.name}" if quantity > 1 else product.name,
        quantity=quantity,
        unit_amount=price.unit_amount,
        period_start=start,
        period_end=end,
        price=price.id,
    )


DRAFTS = "portal.billing.drafts"
"""Transaction state: subscription id to its draft invoice's id (or ``None``), read ahead by :func:`read_drafts`."""


async def read_drafts(subscription_ids: builtins.list[str]) -> None:
    """Read (and lock) the drafts of many subscriptions at once, for :func:`pending_draft` to use once each."""
    rows = await fetch(
        "SELECT subscription_id, min(id) AS id FROM (SELECT subscription_id, id FROM portal_billing_invoice "
        "WHERE subscription_id = ANY($1::text[]) AND status = 'draft' ORDER BY id FOR UPDATE) d "
        "GROUP BY subscription_id",
        subscription_ids,
    )
    found = {row["subscription_id"]: row["id"] for row in rows}
    transaction_state().setdefault(DRAFTS, {}).update({sub: found.get(sub) for sub in subscription_ids})


async def pending_draft(tenant: Tenant, subscription_id: str) -> Invoice | None:
    """The subscription's draft invoice holding prorations for its next renewal, if any."""
    known: dict[str, str | None] = transaction_state().get(DRAFTS, {})
    if subscription_id in known:  # read ahead; used once (a renewal finalizes the draft)
        draft_id = known.pop(subscription_id)
        return await invoices.get(tenant, draft_id) if draft_id else None
    rows = await fetch(
        "SELECT id FROM portal_billing_invoice WHERE merchant_id = $1 AND subscription_id = $2 AND status = 'draft' "
        "ORDER BY id LIMIT 1 FOR UPDATE",
        tenant.merchant.id,
        subscription_id,
    )
    return await invoices.get(tenant, rows[0]["id"]) if rows else None


async def bill_period(
    tenant: Tenant, subscription: Subscription, price: Price, start: datetime, end: datetime, *, now: datetime,
    actor: Actor,
) -> Invoice:  # fmt: skip
    """Create and finalize the invoice of the period ``[start, end)``, with any pending prorations."""
    line = await period_line(tenant, price, subscription.quantity, start, end)
    draft = await pending_draft(tenant, subscription.id)
    if draft is None:
        draft = await invoices.create(
            tenant, customer_id=subscription.customer, currency=price.currency, lines=[line],
            subscription_id=subscription.id, hosted=False, now=now, actor=actor,
        )  # fmt: skip
    else:
        draft = await invoices.add_lines(tenant, draft.id, [line])
    return await invoices.finalize(tenant, draft.id, now=now, actor=actor, draft=draft)


async def create(
    tenant: Tenant,
    *,
    customer_id: str,
    price_id: str,
    quantity: int = 1,
    trial_end: datetime | None = None,
    default_payment_method: str | None = None,
    now: datetime,
    actor: Actor,
) -> Subscription:
    """Subscribe a customer to an active price.

    With ``trial_end`` (after ``now``) the subscription is ``trialing`` until then and nothing is
    invoiced; otherwise it is ``active`` and the first period's invoice is finalized (``open``)
    for the engine to charge. The billing anchor is the trial's end or ``now``.
    """
    require_transaction(tenant)
    await invoices.require_customer(tenant, customer_id)
    price = await get_price(tenant, price_id)
    if not price.active:
        raise BillingError("inactive_price", f"price {price_id} is archived")
    _check_quantity(quantity)
    if trial_end is not None and trial_end <= now:
        raise BillingError("invalid_trial_end", "trial_end must be in the future")
    anchor = trial_end or now
    end = trial_end or period_end(tenant, price, anchor, now)
    subscription_id = new_id("sub")
    rows = await fetch(
        f"""
        INSERT INTO portal_billing_subscription (id, iso_id, merchant_id, customer_id, price_id, quantity, status,
            current_period_start, current_period_end, billing_anchor, default_payment_method, trial_end,
            created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $8, $8) RETURNING {COLUMNS}
        """,
        subscription_id, tenant.merchant.iso_id, tenant.merchant.id, customer_id, price_id, quantity,
        "trialing" if trial_end else "active", now, end, anchor, default_payment_method, trial_end,
    )  # fmt: skip
    subscription = _subscription(rows[0])
    invoice = None
    if trial_end is None:
        invoice = await bill_period(tenant, subscription, price, now, end, now=now, actor=actor)
    await _emit(
        tenant, "subscription.created", subscription, actor, previous=None, invoice=invoice.id if invoice else None
    )
    return subscription


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 1_000_000:
        raise BillingError("invalid_quantity", "quantity is a whole number from 1 to 1,000,000")


async def pause(
    tenant: Tenant, subscription_id: str, *, reason: str | None, resumes_at: datetime | None, now: datetime,
    actor: Actor,
) -> Subscription:  # fmt: skip
    """Pause renewals (periods roll on without invoices) until :func:`resume` or ``resumes_at``."""
    subscription = await get(tenant, subscription_id, lock=True)
    check_transition(subscription, "pause")
    if resumes_at is not None and resumes_at <= now:
        raise BillingError("invalid_resumes_at", "resumes_at must be in the future")
    updated = await _update(
        tenant, subscription_id, now, status="paused", pause_reason=reason, paused_at=now, resumes_at=resumes_at
    )
    await _emit(tenant, "subscription.paused", updated, actor, previous=subscription.status, before=subscription)
    return updated


async def resume(tenant: Tenant, subscription_id: str, *, now: datetime, actor: Actor) -> Subscription:
    """End a pause: ``active`` again (``trialing`` while a trial lasts); the next renewal bills."""
    subscription = await get(tenant, subscription_id, lock=True)
    check_transition(subscription, "resume")
    status: SubscriptionStatus = "trialing" if subscription.trial_end and subscription.trial_end > now else "active"
    updated = await _update(
        tenant, subscription_id, now, status=status, pause_reason=None, paused_at=None, resumes_at=None
    )
    await _emit(tenant, "subscription.resumed", updated, actor, previous=subscription.status, before=subscription)
    return updated


async def cancel(
    tenant: Tenant,
    subscription_id: str,
    *,
    at_period_end: bool,
    reason: str | None = None,
    comment: str | None = None,
    now: datetime,
    actor: Actor,
) -> Subscription:
    """End now (``canceled``), or schedule the end for the period's end (``cancel_at_period_end``)."""
    subscription = await get(tenant, subscription_id, lock=True)
    details = {"cancellation_reason": reason, "cancellation_comment": comment}
    if at_period_end:
        check_transition(subscription, "schedule_cancel")
        if subscription.cancel_at_period_end:
            raise BillingError("invalid_transition", "the subscription is already set to end at period end")
        updated = await _update(tenant, subscription_id, now, cancel_at_period_end=True, **details)
        await _emit(
            tenant, "subscription.cancel_scheduled", updated, actor, previous=subscription.status, before=subscription
        )
        return updated
    check_transition(subscription, "cancel")
    return await _end(tenant, subscription, now, actor, **details)


async def _end(tenant: Tenant, subscription: Subscription, at: datetime, actor: Actor, **details: Any) -> Subscription:
    updated = await _update(
        tenant, subscription.id, at, status="canceled", canceled_at=at, cancel_at_period_end=False, **details
    )
    await _emit(tenant, "subscription.canceled", updated, actor, previous=subscription.status, before=subscription)
    return updated


async def undo_cancel(tenant: Tenant, subscription_id: str, *, now: datetime, actor: Actor) -> Subscription:
    """Undo a scheduled cancellation (``BillingError('invalid_transition')`` when none is scheduled)."""
    subscription = await get(tenant, subscription_id, lock=True)
    check_transition(subscription, "undo_cancel")
    if not subscription.cancel_at_period_end:
        raise BillingError("invalid_transition", "no cancellation is scheduled")
    updated = await _update(
        tenant, subscription_id, now, cancel_at_period_end=False, cancellation_reason=None, cancellation_comment=None
    )
    await _emit(
        tenant, "subscription.cancel_unscheduled", updated, actor, previous=subscription.status, before=subscription
    )
    return updated


async def renew(
    tenant: Tenant, subscription_id: str, *, now: datetime, actor: Actor, locked: Subscription | None = None
) -> tuple[Subscription, Invoice | None]:
    """Enter the next period of a subscription whose period has ended (``current_period_end <= now``).

    A scheduled cancellation ends it instead (``subscription.canceled`` at the period's end). A
    paused subscription moves on without an invoice; otherwise the new period's invoice is
    finalized (with pending prorations) and a trial becomes ``active``. Emits
    ``subscription.renewed``. One period per call: call again while it is still due. ``locked`` is
    the subscription as this transaction holds it locked already (read ``FOR UPDATE`` when not given).
    """
    if locked is not None and locked.id == subscription_id:
        subscription = locked
    else:
        subscription = await get(tenant, subscription_id, lock=True)
    check_transition(subscription, "renew")
    if subscription.current_period_end > now:
        raise BillingError("not_due", "the current period has not ended")
    if subscription.cancel_at_period_end:
        return await _end(tenant, subscription, subscription.current_period_end, actor), None
    price = await get_price(tenant, subscription.price)
    start = subscription.current_period_end
    end = period_end(tenant, price, subscription.billing_anchor, start)
    invoice = None
    status = subscription.status
    if status != "paused":
        invoice = await bill_period(tenant, subscription, price, start, end, now=now, actor=actor)
        status = "active" if status == "trialing" else status
    updated = await _update(
        tenant, subscription_id, now, current_period_start=start, current_period_end=end, status=status
    )
    await _emit(
        tenant, "subscription.renewed", updated, actor, previous=subscription.status,
        invoice=invoice.id if invoice else None,
    )  # fmt: skip
    return updated, invoice


async def set_status(
    tenant: Tenant, subscription_id: str, action: str, status: SubscriptionStatus, *, now: datetime, actor: Actor
) -> Subscription:
    """A status change driven by payments; emits ``subscription.updated``.

    ``fail_payment`` (to ``past_due``), ``recover`` (to ``active``), ``mark_unpaid`` (to ``unpaid``,
    when retries are exhausted).
    """
    subscription = await get(tenant, subscription_id, lock=True)
    check_transition(subscription, action)
    updated = await _update(tenant, subscription_id, now, status=status)
    await _emit(tenant, "subscription.updated", updated, actor, previous=subscription.status, before=subscription)
    return updated


async def mark_unpaid(tenant: Tenant, subscription_id: str, *, now: datetime, actor: Actor) -> Subscription:
    """``past_due → unpaid``: payment retries are exhausted; renewals stop until an invoice is paid."""
    return await set_status(tenant, subscription_id, "mark_unpaid", "unpaid", now=now, actor=actor)
