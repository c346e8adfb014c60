"""Paying an invoice at the gateway: claim an attempt, call the gateway, record the answer.

:func:`pay_invoice` opens its own transactions (it refuses to run inside one) so no database
transaction waits on the gateway:

1. claim: lock the invoice and write the attempt (``order_id = <invoice id>-<attempt number>``),
   or take up an attempt whose answer was lost;
2. the gateway's ``sale`` with that order id, outside any transaction;
3. record: the attempt's outcome, the invoice (paid, or still open), the subscription (``active``
   again, or ``past_due``) and their events, in one transaction.

An attempt whose answer never came stays unresolved (``outcome`` NULL); the next call for the
invoice re-sends the same order id before any new attempt, and the gateway answers the earlier
approval instead of charging again.

:func:`pay_invoices` pays many invoices of one ISO (the engine's charge tasks) with one claim
transaction and one record transaction for all of them, the gateway calls in between side by
side; :func:`pay_invoice` is the same for one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from portal.billing import clock, invoices, subscriptions
from portal.billing.errors import BillingError, NotFoundError
from portal.billing.events import InvoicePaymentFailed, PaymentEvent
from portal.billing.models import Invoice, PaymentAttempt, Subscription
from portal.db.batch import in_one_transaction
from portal.db.engine import current_iso, fetch
from portal.events.bus import Actor, emit, record_events_at_commit
from portal.ids import new_id
from portal.payments.gateway import BatchSales, GatewayResponse, GatewayUnavailableError, Money, SaleRequest, classify
from portal.payments.methods import PaymentMethod, charge_ready, list_methods
from portal.tenancy.models import Tenant

if TYPE_CHECKING:
    from portal.platform import Platform

log = logging.getLogger(__name__)

COLUMNS = (
    "id, invoice_id AS invoice, payment_method_id AS payment_method, amount, currency, order_id, outcome, "
    "classification, response_code, response_text, transaction_id, attempted_at"
)


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt ready to send to the gateway."""

    attempt_id: str
    order_id: str
    amount: int
    currency: str
    method: PaymentMethod


def order_id(invoice_id: str, attempt_number: int) -> str:
    """The gateway order id of one attempt: the same attempt never charges twice."""
    return f"{invoice_id}-{attempt_number}"


def _attempt(row: dict[str, Any]) -> PaymentAttempt:
    return msgspec.convert(row, PaymentAttempt)


async def attempts(tenant: Tenant, invoice_id: str) -> list[PaymentAttempt]:
    """The invoice's resolved attempts, oldest first (inside the caller's transaction)."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM portal_billing_payment_attempt WHERE merchant_id = $1 AND invoice_id = $2 "
        "AND outcome IS NOT NULL ORDER BY attempt_number",
        tenant.merchant.id,
        invoice_id,
    )
    return [_attempt(row) for row in rows]


async def _method(tenant: Tenant, customer_id: str, wanted: str | None) -> PaymentMethod:
    merchant = tenant.merchant
    if wanted is None:
        method = await charge_ready(tenant, customer_id)
        if method is None:
            raise BillingError("no_payment_method", "the customer has no card on file to charge")
        return method
    for method in await list_methods(merchant.iso_id, merchant.id, customer_id):
        if method.id == wanted:
            return method
    raise BillingError("no_payment_method", f"the customer has no card {wanted} on file")


async def _claim(tenant: Tenant, invoice: Invoice, payment_method_id: str | None, now: datetime) -> Claim:
    """Write the invoice's next attempt (or take up an unresolved one), holding the invoice locked.

    Raises ``BillingError`` only before writing anything, so a batch can go on with its other invoices.
    """
    known = await fetch(
        "SELECT id, attempt_number, order_id, amount, currency, payment_method_id, outcome IS NULL AS unresolved "
        "FROM portal_billing_payment_attempt WHERE merchant_id = $1 AND invoice_id = $2 ORDER BY attempt_number",
        tenant.merchant.id,
        invoice.id,
    )
    lost = next((row for row in known if row["unresolved"]), None)
    if lost is not None:  # the answer to this order id never came: ask again with the same order id
        methods = await list_methods(tenant.merchant.iso_id, tenant.merchant.id, invoice.customer)
        method = next((m for m in methods if m.id == lost["payment_method_id"]), None)
        if method is None:  # taken off file since: the sandbox or gateway still has the vault entry
            method = await _removed_method(tenant, invoice.customer, lost["payment_method_id"])
        return Claim(
            attempt_id=lost["id"], order_id=lost["order_id"], amount=lost["amount"], currency=lost["currency"],
            method=method,
        )  # fmt: skip
    invoices.check_transition(invoice, "pay")
    if invoice.amount_due <= 0:
        raise BillingError("nothing_due", f"invoice {invoice.id} has nothing due")
    method = await _method(tenant, invoice.customer, payment_method_id)
    number = (known[-1]["attempt_number"] if known else 0) + 1
    claim = Claim(
        attempt_id=new_id("pay"), order_id=order_id(invoice.id, number), amount=invoice.amount_due,
        currency=invoice.currency, method=method,
    )  # fmt: skip
    await fetch(
        "INSERT INTO portal_billing_payment_attempt (id, iso_id, merchant_id, invoice_id, attempt_number, "
        "payment_method_id, amount, currency, order_id, attempted_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        claim.attempt_id, tenant.merchant.iso_id, tenant.merchant.id, invoice.id, number, method.id,
        claim.amount, claim.currency, claim.order_id, now,
    )  # fmt: skip
    return claim


async def _removed_method(tenant: Tenant, customer_id: str, method_id: str) -> PaymentMethod:
    from portal.payments.methods import removed_method

    method = await removed_method(tenant.merchant.iso_id, tenant.merchant.id, customer_id, method_id)
    if method is None:
        raise BillingError("no_payment_method", f"card {method_id} is unknown")
    return method


async def _record(
    tenant: Tenant, claim: Claim, response: GatewayResponse, locks: Locks, *, now: datetime, actor: Actor
) -> PaymentAttempt:
    """Record the gateway's answer to a claim: the attempt, the invoice, the subscription, their events.

    ``locks`` holds the invoice and its subscription, locked by this transaction (in that order)
    before anything was emitted.
    """
    classification = classify(response)
    rows = await fetch(
        f"UPDATE portal_billing_payment_attempt SET outcome = $3, classification = $4, response_code = $5, "
        f"response_text = $6, transaction_id = $7, resolved_at = $8 "
        f"WHERE merchant_id = $1 AND id = $2 AND outcome IS NULL RETURNING {COLUMNS}",
        tenant.merchant.id, claim.attempt_id, response.outcome, classification, response.response_code,
        response.response_text[:500], response.transaction_id, now,
    )  # fmt: skip
    if not rows:  # another caller recorded this attempt first: its record stands
        found = await fetch(
            f"SELECT {COLUMNS} FROM portal_billing_payment_attempt WHERE merchant_id = $1 AND id = $2",
            tenant.merchant.id,
            claim.attempt_id,
        )
        return _attempt(found[0])
    attempt = _attempt(rows[0])
    # Taken from the locks once (a second attempt on the same row reads it again, still locked by us).
    invoice = locks.invoices.pop(attempt.invoice, None) or await invoices.get(tenant, attempt.invoice, lock=True)
    if invoice.merchant != tenant.merchant.id:
        raise NotFoundError("invoice", attempt.invoice)
    subscription = None
    if invoice.subscription is not None:
        subscription = locks.subscriptions.pop(invoice.subscription, None) or await subscriptions.get(
            tenant, invoice.subscription, lock=True
        )
    payload = PaymentEvent(
        attempt=attempt, invoice=invoice.id, customer=invoice.customer, subscription=invoice.subscription
    )
    approved = attempt.outcome == "approved"
    await emit(
        tenant.merchant, "payment.succeeded" if approved else "payment.failed", payload, actor=actor,
        target=("invoice", invoice.id), customer_id=invoice.customer, enabled_plugins=tenant.enabled_plugins,
    )  # fmt: skip
    if approved:
        await _paid(tenant, invoice, subscription, attempt, now=now, actor=actor)
    else:
        await _failed(tenant, invoice, subscription, attempt, now=now, actor=actor)
    return attempt


class Locks(msgspec.Struct, kw_only=True):
    """Rows one transaction locked for its records, by id: subscriptions first, then invoices."""

    subscriptions: dict[str, Subscription] = msgspec.field(default_factory=dict)
    invoices: dict[str, Invoice] = msgspec.field(default_factory=dict)

    async def take(self, invoice_ids: list[str]) -> None:
        """Lock the invoices' subscriptions, then the invoices, each in id order (the order every writer uses)."""
        rows = await fetch(
            "SELECT DISTINCT subscription_id FROM portal_billing_invoice "
            "WHERE id = ANY($1::text[]) AND subscription_id IS NOT NULL",
            invoice_ids,
        )
        self.subscriptions = await subscriptions.lock_all(sorted(row["subscription_id"] for row in rows))
        self.invoices = await invoices.lock_all(invoice_ids)


async def _locked_subscription(tenant: Tenant, subscription_id: str, locked: Subscription | None) -> Subscription:
    """The subscription: ``locked`` when this transaction holds it already, else read ``FOR UPDATE``."""
    if locked is not None and locked.id == subscription_id:
        return locked
    return await subscriptions.get(tenant, subscription_id, lock=True)


async def _paid(
    tenant: Tenant, invoice: Invoice, locked: Subscription | None, attempt: PaymentAttempt, *, now: datetime,
    actor: Actor,
) -> None:  # fmt: skip
    if invoice.status not in invoices.TRANSITIONS["pay"]:
        log.warning("approved charge %s for %s invoice %s: refund it", attempt.order_id, invoice.status, invoice.id)
        return
    invoice = await invoices.record_payment(tenant, invoice.id, attempt.amount, now=now, actor=actor, locked=invoice)
    if invoice.subscription is not None and invoice.status == "paid":
        subscription = await _locked_subscription(tenant, invoice.subscription, locked)
        if subscription.status in subscriptions.TRANSITIONS["recover"] and not await _unpaid_invoices(
            tenant, subscription.id
        ):
            await subscriptions.set_status(tenant, subscription.id, "recover", "active", now=now, actor=actor)


async def _unpaid_invoices(tenant: Tenant, subscription_id: str) -> bool:
    rows = await fetch(
        "SELECT 1 FROM portal_billing_invoice WHERE merchant_id = $1 AND subscription_id = $2 AND status = 'open' "
        "LIMIT 1",
        tenant.merchant.id,
        subscription_id,
    )
    return bool(rows)


async def _failed(
    tenant: Tenant, invoice: Invoice, locked: Subscription | None, attempt: PaymentAttempt, *, now: datetime,
    actor: Actor,
) -> None:  # fmt: skip
    payload = InvoicePaymentFailed(invoice=invoice, attempt=attempt, classification=attempt.classification)
    await emit(
        tenant.merchant, "invoice.payment_failed", payload, actor=actor, target=("invoice", invoice.id),
        customer_id=invoice.customer, enabled_plugins=tenant.enabled_plugins,
    )  # fmt: skip
    if invoice.subscription is not None:
        subscription = await _locked_subscription(tenant, invoice.subscription, locked)
        if subscription.status in subscriptions.TRANSITIONS["fail_payment"]:
            await subscriptions.set_status(tenant, subscription.id, "fail_payment", "past_due", now=now, actor=actor)


@dataclass(frozen=True)
class PayRequest:
    """One invoice to pay: whose, which card (the default one when ``None``) and at what time.

    ``now`` ``None`` is the merchant's time (its test clock, if it has one), read as the attempt
    is claimed.
    """

    tenant: Tenant
    invoice_id: str
    payment_method_id: str | None = None
    now: datetime | None = None


GATEWAY_CALLS_AT_ONCE = 5
"""Gateway calls one :func:`pay_invoices` makes side by side."""


async def pay_invoices(
    platform: Platform, requests: list[PayRequest], *, actor: Actor
) -> list[PaymentAttempt | Exception]:
    """Charge what is due on each invoice (all of one ISO); per request, the attempt or what refused it.

    Results in order: the attempt with the gateway's answer (declines are answers: ``declined``
    or ``error``, classified ``retryable``/``final``), or a ``BillingError`` (see
    :func:`pay_invoice`), or another exception when something broke (for that invoice alone:
    :func:`portal.db.batch.in_one_transaction`).
    """
    if current_iso() is not None:
        raise RuntimeError("pay_invoices opens its own transactions around the gateway calls; call it outside one")
    if not requests:
        return []
    iso_id = requests[0].tenant.merchant.iso_id
    if any(request.tenant.merchant.iso_id != iso_id for request in requests):
        raise ValueError("pay_invoices takes the invoices of one ISO")
    times: dict[str, datetime] = {}
    claim_locks: dict[str, Invoice] = {}

    async def lock_invoices(batch: Sequence[PayRequest]) -> None:
        claim_locks.clear()
        claim_locks.update(await invoices.lock_all(sorted({request.invoice_id for request in batch})))
        unclocked = sorted({r.tenant.merchant.id for r in batch if r.now is None} - times.keys())
        if unclocked:
            times.update(await clock.merchant_times(unclocked))

    async def claim(request: PayRequest) -> tuple[Claim, datetime] | BillingError:
        invoice = claim_locks.get(request.invoice_id)
        if invoice is None or invoice.merchant != request.tenant.merchant.id:
            return NotFoundError("invoice", request.invoice_id)
        now = request.now or times[request.tenant.merchant.id]
        try:
            return await _claim(request.tenant, invoice, request.payment_method_id, now), now
        except BillingError as exc:  # raised before anything was written
            return exc

    claimed = await in_one_transaction(iso_id, requests, claim, prepare=lock_invoices)
    answers = await _send(platform, requests, claimed)
    answered = [
        (request, found[0], found[1], answer)
        for request, found, answer in zip(requests, claimed, answers, strict=True)
        if not isinstance(answer, Exception) and not isinstance(found, Exception)
    ]
    locks = Locks()

    async def lock_records(batch: Sequence[tuple[PayRequest, Claim, datetime, GatewayResponse]]) -> None:
        record_events_at_commit()  # the audit chain is held from the commit's start only
        await locks.take(sorted({request.invoice_id for request, *_ in batch}))

    async def record(item: tuple[PayRequest, Claim, datetime, GatewayResponse]) -> PaymentAttempt:
        request, found, now, response = item
        return await _record(request.tenant, found, response, locks, now=now, actor=actor)

    recorded = iter(await in_one_transaction(iso_id, answered, record, prepare=lock_records))
    return [answer if isinstance(answer, Exception) else next(recorded) for answer in answers]


async def _send(
    platform: Platform, requests: list[PayRequest], claimed: list[tuple[Claim, datetime] | BillingError | Exception]
) -> list[GatewayResponse | Exception]:
    """Each claim's sale at its merchant's gateway, in order (a request that claimed nothing keeps its refusal).

    A merchant whose adapter offers :class:`portal.payments.gateway.BatchSales` gets one request
    for all its sales; otherwise the sales go one by one, :data:`GATEWAY_CALLS_AT_ONCE` at a time.
    """
    answers: list[GatewayResponse | Exception | None] = [
        found if isinstance(found, Exception) else None for found in claimed
    ]
    by_merchant: dict[str, list[int]] = {}
    for n, (request, found) in enumerate(zip(requests, claimed, strict=True)):
        if not isinstance(found, Exception):
            by_merchant.setdefault(request.tenant.merchant.id, []).append(n)
    calls = asyncio.Semaphore(GATEWAY_CALLS_AT_ONCE)

    async def one(n: int) -> None:
        found = claimed[n]
        assert not isinstance(found, Exception)
        async with calls:
            answers[n] = await _sale(platform, requests[n].tenant, found[0])

    async def merchant_sales(numbers: list[int]) -> None:
        tenant = requests[numbers[0]].tenant
        adapter = platform.gateways.for_tenant(tenant)
        if not isinstance(adapter, BatchSales) or len(numbers) == 1:
            await asyncio.gather(*(one(n) for n in numbers))
            return
        sales = []
        for n in numbers:
            found = claimed[n]
            assert not isinstance(found, Exception)
            claim = found[0]
            sales.append(
                SaleRequest(
                    vault_id=claim.method.vault_id,
                    billing_id=claim.method.billing_id,
                    amount=Money(claim.amount, claim.currency),
                    order_id=claim.order_id,
                )
            )
        try:
            results = await adapter.sales(sales)
        except Exception as exc:
            results = [exc] * len(sales)
        for n, sale, result in zip(numbers, sales, results, strict=True):
            answers[n] = _unanswered(tenant, sale.order_id, result) if isinstance(result, Exception) else result

    await asyncio.gather(*(merchant_sales(numbers) for numbers in by_merchant.values()))
    return [answer if answer is not None else RuntimeError("no answer") for answer in answers]


def _unanswered(tenant: Tenant, order_id: str, exc: Exception) -> Exception:
    """What a sale that raised answers: ``gateway_unavailable`` for a lost answer, else the exception itself."""
    if isinstance(exc, GatewayUnavailableError | TimeoutError | OSError):
        log.warning("no answer to sale %s for %s: %s", order_id, tenant.merchant.slug, exc)
        error = BillingError("gateway_unavailable", f"no answer to order {order_id}; it is asked again")
        error.__cause__ = exc
        return error
    log.error("sale %s for %s failed: %s", order_id, tenant.merchant.slug, exc)
    return exc


async def _sale(platform: Platform, tenant: Tenant, claim: Claim) -> GatewayResponse | Exception:
    """The gateway's answer to a claim's sale, or ``BillingError('gateway_unavailable')`` when none came."""
    adapter = platform.gateways.for_tenant(tenant)
    try:
        return await adapter.sale(
            vault_id=claim.method.vault_id, billing_id=claim.method.billing_id,
            amount=Money(claim.amount, claim.currency), order_id=claim.order_id,
        )  # fmt: skip
    except Exception as exc:
        return _unanswered(tenant, claim.order_id, exc)


async def pay_invoice(
    platform: Platform,
    tenant: Tenant,
    invoice_id: str,
    *,
    payment_method_id: str | None = None,
    now: datetime,
    actor: Actor,
) -> PaymentAttempt:
    """Charge what is due on an open (or uncollectible) invoice; the attempt with the gateway's answer.

    Declines are answers, not errors: the attempt says ``declined`` or ``error`` and how to
    classify it (``retryable``/``final``). Raises ``BillingError``: ``no_payment_method``,
    ``nothing_due``, ``invalid_transition`` (a draft, paid or void invoice), ``not_found`` (not the
    merchant's invoice), and ``gateway_unavailable`` when the answer was lost (the attempt is
    taken up again, with the same order id, by the next call).
    """
    request = PayRequest(tenant=tenant, invoice_id=invoice_id, payment_method_id=payment_method_id, now=now)
    (result,) = await pay_invoices(platform, [request], actor=actor)
    if isinstance(result, Exception):
        raise result
    return result
