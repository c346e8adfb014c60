"""The renewal and charge engine: what the worker does for subscriptions whose time has come.

Three pieces, all PostgreSQL records run by ``portal worker`` (see ``docs/billing.md``):

- The scheduled job ``portal.billing.renewals`` (every 30 s, one worker at a time) goes ISO by
  ISO. In tenant transactions of up to 5,000 subscriptions each (pages, one after another
  until the ISO has no more due, for up to 30 s a run) it claims the subscriptions that are due in their
  merchant's time (:func:`portal.billing.clock.merchant_now`: the test clock, if the merchant
  has one) with ``FOR UPDATE SKIP LOCKED`` (a row another transaction is changing is left for
  the next run) and queues one ``portal.billing.renew`` task per subscription and due time
  (dedupe key ``<subscription id>:<due time ISO 8601>``, so a subscription is never queued
  twice for one period). It also queues ``portal.billing.charge`` for open subscription
  invoices that no one tried to charge yet (a new subscription's first invoice).
- ``portal.billing.renew`` locks the subscription and does what is due: a pause whose
  ``resumes_at`` passed ends; a period that ended is renewed by
  :func:`portal.billing.subscriptions.renew` (a scheduled cancellation takes effect instead; a
  paused subscription rolls on without an invoice; otherwise the new period's invoice is
  created and finalized in the same transaction as the period moves) and the invoice's charge
  is queued as ``portal.billing.charge`` (dedupe key ``<invoice id>:<attempt number>``). A task
  run again after its worker died finds the period moved and bills nothing twice.
- ``portal.billing.charge`` pays the invoice with :func:`portal.billing.charges.pay_invoice`,
  which calls the gateway outside any transaction with the order id ``<invoice id>-<attempt>``:
  a charge task run twice re-sends the same order id, and the gateway answers the first sale
  instead of charging again. An approval marks the invoice paid; a decline makes the
  subscription ``past_due`` and emits ``invoice.payment_failed`` with the decline's
  classification.

:func:`queue_due` and :func:`renew_subscription` take the merchant's time explicitly, so test
clocks (:mod:`portal.billing.advance`) run exactly this code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from portal.billing import charges, clock, subscriptions
from portal.billing.errors import BillingError, NotFoundError
from portal.billing.models import Subscription
from portal.db.batch import in_one_transaction
from portal.db.engine import before_commit, current_iso, fetch, tenant_transaction
from portal.events.bus import SYSTEM, record_events_at_commit
from portal.tasks.durable import PermanentTaskError, TaskRun, TaskToQueue, durable_batch_task, queue_tasks
from portal.tasks.schedules import scheduled
from portal.tasks.system import iso_ids

if TYPE_CHECKING:
    from portal.platform import Platform
    from portal.tenancy.models import Tenant

log = logging.getLogger(__name__)

JOB = "portal.billing.renewals"
RENEW = "portal.billing.renew"
CHARGE = "portal.billing.charge"
EVERY = timedelta(seconds=30)
CLAIM_LIMIT = 5000
"""Subscriptions (and invoices) one transaction of the job claims per ISO: a page."""
TENANT_MAX_AGE = 5.0
"""Seconds a worker reuses a merchant it loaded for a task (tenant changes heard clear it sooner)."""

Action = Literal["renewed", "canceled", "resumed", "skipped"]
RENEWABLE = frozenset({"trialing", "active", "past_due", "paused"})
"""Statuses whose period end renews the subscription (a paused one rolls on without an invoice)."""

DUE_SUBSCRIPTIONS = """
SELECT s.id, s.merchant_id, s.status, s.current_period_end, s.resumes_at, coalesce($2, c.now, now()) AS now
  FROM portal_billing_subscription s
  LEFT JOIN portal_billing_clock c ON c.merchant_id = s.merchant_id AND c.active
 WHERE ($1::text IS NULL OR s.merchant_id = $1)
   AND ($3::timestamptz IS NULL OR (s.current_period_end, s.id) > ($3, $4::text))
   AND s.status IN ('trialing', 'active', 'past_due', 'paused')
   AND (s.current_period_end <= coalesce($2, c.now, now())
        OR (s.status = 'paused' AND s.resumes_at <= coalesce($2, c.now, now())))
 ORDER BY s.current_period_end, s.id
 LIMIT $5
   FOR UPDATE OF s SKIP LOCKED
"""
"""Up to ``$5`` subscriptions due in their merchant's time (``$2`` overrides it), of one merchant
(``$1``) or all, after the page that ended at (period end ``$3``, id ``$4``) when given."""

UNCHARGED_INVOICES = f"""
SELECT i.id, i.merchant_id
  FROM portal_billing_invoice i
 WHERE ($1::text IS NULL OR i.merchant_id = $1)
   AND i.status = 'open' AND NOT i.hosted AND i.subscription_id IS NOT NULL AND i.amount_due > 0
   AND NOT EXISTS (SELECT 1 FROM portal_billing_payment_attempt a WHERE a.invoice_id = i.id)
 ORDER BY i.id
 LIMIT {CLAIM_LIMIT}
   FOR UPDATE OF i SKIP LOCKED
"""
"""Open subscription invoices nobody tried to charge yet (a new subscription's first one)."""


def due_time(row: dict[str, Any], now: datetime) -> datetime:
    """When the work on a due subscription row fell due: its period end, else (paused) its pause end."""
    period_end: datetime = row["current_period_end"]
    resumes_at: datetime | None = row["resumes_at"]
    if period_end <= now or resumes_at is None:
        return period_end
    return resumes_at


def renew_key(subscription_id: str, at: datetime) -> str:
    """The dedupe key of the renew task of ``subscription_id`` due at ``at``."""
    return f"{subscription_id}:{at.isoformat()}"


def charge_key(invoice_id: str, attempt: int) -> str:
    """The dedupe key of charge attempt ``attempt`` (1 first) of ``invoice_id``."""
    return f"{invoice_id}:{attempt}"


Page = tuple[datetime, str]
"""Where a page of due subscriptions ended: the last one's (period end, id)."""


async def queue_due(*, merchant_id: str | None = None, now: datetime | None = None) -> int:
    """Queue the renew and charge tasks of what is due, in the current ISO's transaction; return how many.

    Claims due subscriptions (up to :data:`CLAIM_LIMIT`) and uncharged invoices with ``FOR
    UPDATE SKIP LOCKED`` (until the transaction ends). ``merchant_id`` limits it to one merchant
    and ``now`` replaces the merchants' times (test clocks pass both). Tasks already queued (same
    dedupe key) are not queued again.
    """
    queued, _ = await queue_due_page(merchant_id=merchant_id, now=now)
    return queued


async def queue_due_page(
    *, merchant_id: str | None = None, now: datetime | None = None, after: Page | None = None, limit: int = 0
) -> tuple[int, Page | None]:
    """:func:`queue_due` for ``limit`` due subscriptions after ``after``; how many tasks, and where a full page ended.

    ``limit`` defaults to :data:`CLAIM_LIMIT`. The first page (no ``after``) also queues the first
    charges of uncharged invoices. The page is ``None`` when fewer than ``limit`` subscriptions
    were due after ``after``.
    """
    limit = limit or CLAIM_LIMIT
    if current_iso() is None:
        raise RuntimeError("queue_due runs inside tenant_transaction(iso_id)")
    renewals = []
    rows = await fetch(DUE_SUBSCRIPTIONS, merchant_id, now, *(after or (None, None)), limit)
    for row in rows:
        at = due_time(row, row["now"])
        renewals.append(
            TaskToQueue(
                args={"subscription": row["id"], "at": at.isoformat()},
                merchant_id=row["merchant_id"],
                dedupe_key=renew_key(row["id"], at),
            )
        )
    queued = sum(1 for task_id in await queue_tasks(RENEW_TASK, renewals) if task_id)
    if after is None:
        uncharged = [(row["id"], row["merchant_id"]) for row in await fetch(UNCHARGED_INVOICES, merchant_id)]
        queued += await queue_charges(uncharged, attempt=1)
    page = (rows[-1]["current_period_end"], rows[-1]["id"]) if len(rows) >= limit else None
    return queued, page


async def queue_charges(invoices: list[tuple[str, str]], *, attempt: int) -> int:
    """Queue charge attempt ``attempt`` of each (invoice id, merchant id), once per attempt; how many were new."""
    charges = [
        TaskToQueue(
            args={"invoice": invoice_id, "attempt": attempt},
            merchant_id=merchant_id,
            dedupe_key=charge_key(invoice_id, attempt),
        )
        for invoice_id, merchant_id in invoices
    ]
    return sum(1 for task_id in await queue_tasks(CHARGE_TASK, charges) if task_id)


async def queue_charge(invoice_id: str, merchant_id: str, *, attempt: int) -> bool:
    """Queue charge attempt ``attempt`` of an invoice (once per attempt number); False when it was queued before."""
    return await queue_charges([(invoice_id, merchant_id)], attempt=attempt) == 1


@scheduled(JOB, every=EVERY)
async def renewals(platform: Platform) -> int:
    """Queue what fell due in every active ISO, a page of :data:`CLAIM_LIMIT` per transaction; return how many tasks.

    An ISO's pages follow one another until none is full, so that workers start on the first
    page's tasks while the next is queued and a burst (the first of the month) is queued in one
    run rather than :data:`CLAIM_LIMIT` per :data:`EVERY`; a run stops paging after
    :data:`EVERY` and the next run goes on.
    """
    queued = 0
    deadline = time.monotonic() + EVERY.total_seconds()
    for iso_id in await iso_ids():
        page: Page | None = None
        while True:
            async with tenant_transaction(iso_id):
                count, page = await queue_due_page(after=page)
            queued += count
            if page is None or time.monotonic() > deadline:
                break
    if queued:
        log.info("billing: queued %s renewal and charge tasks", queued)
    return queued


# --- renewing ---------------------------------------------------------------------------------


async def renew_subscription(
    platform: Platform,
    tenant: Tenant,
    subscription_id: str,
    *,
    now: datetime,
    locked: Subscription | None = None,
    charges_to_queue: list[tuple[str, str]] | None = None,
) -> Action:
    """Do what is due for one subscription at ``now``, in the caller's tenant transaction.

    Locks the subscription, then, in the order they fell due: a pause whose ``resumes_at``
    passed ends (:func:`portal.billing.subscriptions.resume`); a period that ended is renewed, one period
    per call (:func:`portal.billing.subscriptions.renew`: a scheduled cancellation ends the
    subscription instead, a paused one rolls on without an invoice, otherwise the new period's
    invoice is finalized) and the invoice's first charge is queued. The period moves in the same
    transaction as the invoice is made, so a task run again after its worker died finds nothing
    left to do for that period. Anything else (done already, changed meanwhile) is ``skipped``.
    ``locked`` is the subscription as this transaction locked it already; with
    ``charges_to_queue`` the charge is appended there, as (invoice id, merchant id), for the
    caller to queue (:func:`queue_charges`) instead of queued at once.
    """
    merchant = tenant.merchant
    if current_iso() != merchant.iso_id:
        raise RuntimeError("renew_subscription runs inside the merchant's tenant transaction")
    # The subscription first, as every change and the payment record take it (then the invoice,
    # then the audit chain through emit): one order, so they cannot deadlock.
    if locked is not None and locked.id == subscription_id:
        sub = locked
    else:
        try:
            sub = await subscriptions.get(tenant, subscription_id, lock=True)
        except NotFoundError:
            return "skipped"
    action: Action = "skipped"
    renewed = False
    while True:  # what fell due, in time order: a pause end, then (once per call) a period end
        resume_due = sub.status == "paused" and sub.resumes_at is not None and sub.resumes_at <= now
        period_due = sub.status in RENEWABLE and sub.current_period_end <= now and not renewed
        if resume_due and (not period_due or (sub.resumes_at is not None and sub.resumes_at <= sub.current_period_end)):
            sub = await subscriptions.resume(tenant, sub.id, now=now, actor=SYSTEM)
            action = "resumed"
            continue
        if not period_due:
            return action
        sub, invoice = await subscriptions.renew(tenant, sub.id, now=now, actor=SYSTEM, locked=sub)
        renewed = True
        if sub.status == "canceled":
            return "canceled"
        action = "renewed"
        if invoice is not None and invoice.status == "open" and invoice.amount_due > 0:
            if charges_to_queue is None:
                await queue_charge(invoice.id, merchant.id, attempt=1)
            else:
                charges_to_queue.append((invoice.id, merchant.id))


# --- tasks ------------------------------------------------------------------------------------


async def _tenants(runs: list[TaskRun]) -> dict[str, Tenant | PermanentTaskError]:
    """Each run's merchant by run id, or the error that ends a run whose merchant is gone."""
    found: dict[str, Tenant | PermanentTaskError] = {}
    for run in runs:
        if run.merchant_id is None:
            found[run.id] = PermanentTaskError(f"{run.name} needs a merchant")
            continue
        tenant = await run.platform.tenants.merchant(run.iso_id, run.merchant_id, max_age=TENANT_MAX_AGE)
        found[run.id] = (
            tenant if tenant is not None else PermanentTaskError(f"merchant {run.merchant_id} is not active")
        )
    return found


def _outcomes(runs: list[TaskRun], failed: dict[str, Exception], done: list[Any]) -> list[BaseException | None]:
    """The outcome of each run in order: its early failure, else its result (an exception fails it)."""
    results = iter(done)
    outcomes: list[BaseException | None] = []
    for run in runs:
        result = failed[run.id] if run.id in failed else next(results)
        outcomes.append(result if isinstance(result, BaseException) else None)
    return outcomes


@durable_batch_task(RENEW)
async def renew(runs: list[TaskRun]) -> list[BaseException | None]:
    """Do what is due for each run's ``args.subscription`` at its merchant's time (see :func:`renew_subscription`).

    The runs share one transaction (:func:`portal.db.batch.in_one_transaction`): the
    subscriptions are locked together, in id order, and the merchants' times read, before any
    renewal runs; the events are recorded at commit (:func:`portal.events.bus.record_events_at_commit`).
    """
    tenants = await _tenants(runs)
    failed: dict[str, Exception] = {run.id: found for run in runs if isinstance(found := tenants[run.id], Exception)}
    ready = [run for run in runs if run.id not in failed]
    locked: dict[str, Subscription] = {}
    times: dict[str, datetime] = {}
    charges_to_queue: list[tuple[str, str]] = []

    async def queue_collected_charges() -> None:
        await queue_charges(charges_to_queue, attempt=1)

    async def prepare(batch: Sequence[TaskRun]) -> None:
        record_events_at_commit()  # the audit chain is held from the commit's start only
        charges_to_queue.clear()
        before_commit(queue_collected_charges)  # the charges of the renewals this transaction makes, at once
        locked.clear()
        locked.update(await subscriptions.lock_all([str(run.args["subscription"]) for run in batch]))
        await subscriptions.read_drafts(sorted(locked))
        times.update(await clock.merchant_times(sorted({str(run.merchant_id) for run in batch})))

    async def work(run: TaskRun) -> Action:
        tenant = tenants[run.id]
        assert not isinstance(tenant, Exception)
        subscription_id = str(run.args["subscription"])
        sub = locked.get(subscription_id)
        if sub is None or sub.merchant != tenant.merchant.id:
            return "skipped"
        action = await renew_subscription(
            run.platform, tenant, subscription_id, now=times[tenant.merchant.id], locked=sub,
            charges_to_queue=charges_to_queue,
        )  # fmt: skip
        log.debug("billing: subscription %s %s", subscription_id, action)
        return action

    done = await in_one_transaction(runs[0].iso_id, ready, work, prepare=prepare)
    return _outcomes(runs, failed, done)


@durable_batch_task(CHARGE)
async def charge(runs: list[TaskRun]) -> list[BaseException | None]:
    """Pay each run's ``args.invoice`` with the card on file (:func:`portal.billing.charges.pay_invoices`).

    A lost gateway answer (``gateway_unavailable``) or a payment another caller is making
    (``payment_in_progress``) fails the run, to be retried on the task's schedule with the same
    order id; any other refusal (paid meanwhile, no card on file) ends it.
    """
    tenants = await _tenants(runs)
    failed: dict[str, Exception] = {run.id: found for run in runs if isinstance(found := tenants[run.id], Exception)}
    ready = [run for run in runs if run.id not in failed]
    requests = [
        charges.PayRequest(tenant=tenant, invoice_id=str(run.args["invoice"]))
        for run in ready
        if not isinstance(tenant := tenants[run.id], Exception)
    ]
    results = await charges.pay_invoices(runs[0].platform, requests, actor=SYSTEM) if requests else []
    done: list[Any] = []
    for request, result in zip(requests, results, strict=True):
        if isinstance(result, BillingError) and result.code not in ("gateway_unavailable", "payment_in_progress"):
            log.info("billing: invoice %s not charged: %s", request.invoice_id, result)
            done.append(None)
        else:
            done.append(result)
    return _outcomes(runs, failed, done)


RENEW_TASK = renew
CHARGE_TASK = charge
