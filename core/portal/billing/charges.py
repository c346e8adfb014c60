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
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from portal.billing import invoices, subscriptions
from portal.billing.errors import BillingError, NotFoundError
from portal.billing.events import InvoicePaymentFailed, PaymentEvent
from portal.billing.models import Invoice, PaymentAttempt, Subscription
from portal.db.engine import current_iso, fetch, tenant_transaction
from portal.events.bus import Actor, emit
from portal.ids import new_id
from portal.payments.gateway import GatewayResponse, GatewayUnavailableError, Money, classify
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


async def _claim(tenant: Tenant, invoice_id: str, payment_method_id: str | None, now: datetime) -> Claim:
    async with tenant_transaction(tenant.merchant.iso_id):
        invoice = await invoices.get(tenant, invoice_id, lock=True)
        lost = await fetch(
            "SELECT id, order_id, amount, currency, payment_method_id FROM portal_billing_payment_attempt "
            "WHERE merchant_id = $1 AND invoice_id = $2 AND outcome IS NULL ORDER BY attempt_number LIMIT 1",
            tenant.merchant.id,
            invoice_id,
        )
        if lost:  # the answer to this order id never came: ask again with the same order id
            row = lost[0]
            methods = await list_methods(tenant.merchant.iso_id, tenant.merchant.id, invoice.customer)
            method = next((m for m in methods if m.id == row["payment_method_id"]), None)
            if method is None:  # taken off file since: the sandbox or gateway still has the vault entry
                method = await _removed_method(tenant, invoice.customer, row["payment_method_id"])
            return Claim(
                attempt_id=row["id"], order_id=row["order_id"], amount=row["amount"], currency=row["currency"],
                method=method,
            )  # fmt: skip
        invoices.check_transition(invoice, "pay")
        if invoice.amount_due <= 0:
            raise BillingError("nothing_due", f"invoice {invoice_id} has nothing due")
        method = await _method(tenant, invoice.customer, payment_method_id)
        numbers = await fetch(
            "SELECT COALESCE(max(attempt_number), 0) + 1 AS n FROM portal_billing_payment_attempt "
            "WHERE merchant_id = $1 AND invoice_id = $2",
            tenant.merchant.id,
            invoice_id,
        )
        claim = Claim(
            attempt_id=new_id("pay"), order_id=order_id(invoice_id, numbers[0]["n"]), amount=invoice.amount_due,
            currency=invoice.currency, method=method,
        )  # fmt: skip
        await fetch(
            "INSERT INTO portal_billing_payment_attempt (id, iso_id, merchant_id, invoice_id, attempt_number, "
            "payment_method_id, amount, currency, order_id, attempted_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            claim.attempt_id, tenant.merchant.iso_id, tenant.merchant.id, invoice_id, numbers[0]["n"], method.id,
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
    tenant: Tenant, claim: Claim, response: GatewayResponse, *, now: datetime, actor: Actor
) -> PaymentAttempt:
    classification = classify(response)
    async with tenant_transaction(tenant.merchant.iso_id):
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
        # Locks in the order every subscription change takes them: the subscription, then the
        # invoice, then (through emit) the merchant's audit chain; another order can deadlock.
        found = await fetch(
            "SELECT subscription_id FROM portal_billing_invoice WHERE merchant_id = $1 AND id = $2",
            tenant.merchant.id,
            attempt.invoice,
        )
        if not found:
            raise NotFoundError("invoice", attempt.invoice)
        subscription_id = found[0]["subscription_id"]
        subscription = None
        if subscription_id is not None:
            subscription = await subscriptions.get(tenant, subscription_id, lock=True)
        invoice = await invoices.get(tenant, attempt.invoice, lock=True)
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
    ``nothing_due``, ``invalid_transition`` (a draft, paid or void invoice), and
    ``gateway_unavailable`` when the answer was lost (the attempt is taken up again, with the same
    order id, by the next call).
    """
    if current_iso() is not None:
        raise RuntimeError("pay_invoice opens its own transactions around the gateway call; call it outside one")
    claim = await _claim(tenant, invoice_id, payment_method_id, now)
    adapter = platform.gateways.for_tenant(tenant)
    try:
        response = await adapter.sale(
            vault_id=claim.method.vault_id, billing_id=claim.method.billing_id,
            amount=Money(claim.amount, claim.currency), order_id=claim.order_id,
        )  # fmt: skip
    except (GatewayUnavailableError, TimeoutError, OSError) as exc:
        log.warning("no answer to sale %s for %s: %s", claim.order_id, tenant.merchant.slug, exc)
        raise BillingError("gateway_unavailable", f"no answer to order {claim.order_id}; it is asked again") from exc
    return await _record(tenant, claim, response, now=now, actor=actor)
