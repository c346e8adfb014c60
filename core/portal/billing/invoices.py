"""Invoices: drafts with lines, finalizing (numbering), voiding, marking uncollectible, reading.

Transitions: ``draft → open`` (finalize; ``paid`` at once when nothing is due), ``open → paid``
(:mod:`portal.billing.charges`), ``open|uncollectible → void``, ``open → uncollectible``,
``uncollectible → paid``. Anything else raises ``BillingError('invalid_transition')``.

Numbers come from one counter row per merchant, taken ``FOR UPDATE`` in the finalizing
transaction: a number is used exactly when that transaction commits, so there are no gaps and
no duplicates however many invoices are finalized at once.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import msgspec

from portal.billing.errors import BillingError, NotFoundError
from portal.billing.events import InvoiceEvent
from portal.billing.models import Invoice, InvoiceLine, InvoiceStatus, LineInput
from portal.billing.money import check_currency
from portal.billing.rows import page, require_transaction
from portal.db.engine import fetch, transaction_state
from portal.events.bus import Actor, emit
from portal.ids import new_id
from portal.tenancy.models import Tenant

FIRST_NUMBER = 1001
COLUMNS = (
    "id, merchant_id AS merchant, customer_id AS customer, number, status, currency, subtotal, tax, total, "
    "amount_paid, amount_due, issued_at, due_at, paid_at, subscription_id AS subscription, hosted, created_at"
)
LINE_COLUMNS = "id, invoice_id, description, quantity, unit_amount, amount, period_start, period_end, proration"
MAX_LINES = 250
MAX_AMOUNT = 99_999_999_999

TRANSITIONS: dict[str, frozenset[InvoiceStatus]] = {
    "finalize": frozenset({"draft"}),
    "add_lines": frozenset({"draft"}),
    "pay": frozenset({"open", "uncollectible"}),
    "void": frozenset({"open", "uncollectible"}),
    "mark_uncollectible": frozenset({"open"}),
}
"""Action to the statuses it may start from."""


def check_transition(invoice: Invoice, action: str) -> None:
    """Raise ``BillingError('invalid_transition')`` unless ``action`` may start from the invoice's status."""
    if invoice.status not in TRANSITIONS[action]:
        raise BillingError("invalid_transition", f"cannot {action.replace('_', ' ')} a {invoice.status} invoice")


async def _lines(invoice_ids: builtins.list[str]) -> dict[str, builtins.list[InvoiceLine]]:
    rows = await fetch(
        f"SELECT {LINE_COLUMNS} FROM portal_billing_invoice_line WHERE invoice_id = ANY($1::text[]) "
        "ORDER BY invoice_id, position",
        invoice_ids,
    )
    found: dict[str, builtins.list[InvoiceLine]] = {invoice_id: [] for invoice_id in invoice_ids}
    for row in rows:
        found[row.pop("invoice_id")].append(msgspec.convert(row, InvoiceLine))
    return found


async def _with_lines(rows: builtins.list[dict[str, Any]]) -> builtins.list[Invoice]:
    lines = await _lines([row["id"] for row in rows])
    return [msgspec.convert({**row, "lines": lines[row["id"]]}, Invoice) for row in rows]


def _invoice(row: dict[str, Any], lines: builtins.list[InvoiceLine]) -> Invoice:
    """The invoice of a row this transaction read or wrote (``RETURNING``), with its lines."""
    return msgspec.structs.replace(msgspec.convert({**row, "lines": []}, Invoice), lines=lines)


async def get(tenant: Tenant, invoice_id: str, *, lock: bool = False) -> Invoice:
    """One of the merchant's invoices with its lines; ``lock`` holds its row until the transaction ends."""
    require_transaction(tenant)
    rows = await fetch(
        f"SELECT {COLUMNS} FROM portal_billing_invoice WHERE merchant_id = $1 AND id = $2"
        + (" FOR UPDATE" if lock else ""),
        tenant.merchant.id,
        invoice_id,
    )
    if not rows:
        raise NotFoundError("invoice", invoice_id)
    return (await _with_lines(rows))[0]


async def lock_all(invoice_ids: builtins.list[str]) -> dict[str, Invoice]:
    """Lock these invoices of the current ISO (of any of its merchants), in id order; found ones by id, with lines."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM portal_billing_invoice WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
        invoice_ids,
    )
    return {invoice.id: invoice for invoice in await _with_lines(rows)}


async def list(
    tenant: Tenant,
    *,
    customer: str | None = None,
    status: InvoiceStatus | None = None,
    subscription: str | None = None,
    limit: int = 10,
    starting_after: str | None = None,
) -> builtins.list[Invoice]:
    """The merchant's invoices, newest first, optionally one customer's, status's or subscription's."""
    require_transaction(tenant)
    filters = {"customer_id": customer, "status": status, "subscription_id": subscription}
    rows = await page(
        "portal_billing_invoice", COLUMNS, tenant.merchant.id, filters, limit=limit, starting_after=starting_after
    )
    return await _with_lines(rows)


async def require_customer(tenant: Tenant, customer_id: str) -> None:
    """Raise :class:`NotFoundError` unless the customer is the merchant's."""
    rows = await fetch(
        "SELECT 1 FROM portal_customer WHERE merchant_id = $1 AND id = $2", tenant.merchant.id, customer_id
    )
    if not rows:
        raise NotFoundError("customer", customer_id)


def _amount(line: LineInput) -> int:
    for value in (line.quantity, line.unit_amount, line.amount):
        if isinstance(value, bool) or not isinstance(value, int | None):
            raise BillingError("invalid_amount", "quantities and amounts are whole numbers (minor units)")
    if line.quantity < 1:
        raise BillingError("invalid_quantity", "a line's quantity is at least 1")
    amount = line.quantity * line.unit_amount if line.amount is None else line.amount
    if not line.proration and (line.unit_amount < 0 or amount < 0):
        raise BillingError("invalid_amount", "only proration lines may credit (be negative)")
    if abs(amount) > MAX_AMOUNT or abs(line.unit_amount) > MAX_AMOUNT:
        raise BillingError("invalid_amount", "amount too large")
    if not line.description.strip():
        raise BillingError("invalid_line", "a line needs a description")
    return amount


async def _insert_lines(
    tenant: Tenant, invoice_id: str, start: int, lines: builtins.list[LineInput]
) -> builtins.list[InvoiceLine]:
    """Append ``lines`` at ``start``; the new lines, in order (the invoice's totals are the caller's to set)."""
    amounts = [_amount(line) for line in lines]
    added: builtins.list[InvoiceLine] = []
    if lines:
        inserted = await fetch(
            f"""
            INSERT INTO portal_billing_invoice_line (id, iso_id, merchant_id, invoice_id, position, description,
                price_id, quantity, unit_amount, amount, period_start, period_end, proration)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[],
                $8::int[], $9::bigint[], $10::bigint[], $11::timestamptz[], $12::timestamptz[], $13::bool[])
            RETURNING position, {LINE_COLUMNS}
            """,
            [new_id("il") for _ in lines], [tenant.merchant.iso_id] * len(lines), [tenant.merchant.id] * len(lines),
            [invoice_id] * len(lines), [start + i for i in range(len(lines))], [line.description for line in lines],
            [line.price for line in lines], [line.quantity for line in lines], [line.unit_amount for line in lines],
            amounts, [line.period_start for line in lines], [line.period_end for line in lines],
            [line.proration for line in lines],
        )  # fmt: skip
        for row in sorted(inserted, key=lambda row: row["position"]):
            del row["position"], row["invoice_id"]
            added.append(msgspec.convert(row, InvoiceLine))
    return added


async def _total(invoice_id: str) -> dict[str, Any]:
    """Total the invoice from its lines; its row as updated."""
    rows = await fetch(
        f"""
        UPDATE portal_billing_invoice i SET subtotal = s.sum, total = s.sum + i.tax,
               amount_due = GREATEST(s.sum + i.tax - i.amount_paid, 0)
          FROM (SELECT COALESCE(sum(amount), 0)::bigint AS sum FROM portal_billing_invoice_line
                 WHERE invoice_id = $1) s
         WHERE i.id = $1
        RETURNING {COLUMNS}
        """,
        invoice_id,
    )
    return rows[0]


async def create(
    tenant: Tenant,
    *,
    customer_id: str,
    currency: str,
    lines: builtins.list[LineInput],
    tax: int = 0,
    due_at: datetime | None = None,
    subscription_id: str | None = None,
    hosted: bool = True,
    now: datetime,
    actor: Actor,
) -> Invoice:
    """A draft invoice with ``lines`` (and ``tax`` as a plain amount); emits ``invoice.created``."""
    require_transaction(tenant)
    check_currency(currency)
    if len(lines) > MAX_LINES:
        raise BillingError("too_many_lines", f"at most {MAX_LINES} lines")
    if isinstance(tax, bool) or not isinstance(tax, int) or not 0 <= tax <= MAX_AMOUNT:
        raise BillingError("invalid_amount", "tax is a whole number of minor units, 0 or more")
    subtotal = sum(_amount(line) for line in lines)
    invoice_id = new_id("inv")
    # The totals are the lines' (inserted next, in this transaction); the customer must be the merchant's.
    rows = await fetch(
        f"""
        INSERT INTO portal_billing_invoice (id, iso_id, merchant_id, customer_id, subscription_id, status, currency,
            subtotal, tax, total, amount_due, hosted, due_at, created_at, updated_at)
        SELECT $1, $2, $3::text, $4::text, $5, 'draft', $6, $7::bigint, $8::bigint, $7 + $8, GREATEST($7 + $8, 0), $9,
               $10::timestamptz, $11::timestamptz, $11
         WHERE EXISTS (SELECT 1 FROM portal_customer WHERE merchant_id = $3 AND id = $4)
        RETURNING {COLUMNS}
        """,
        invoice_id, tenant.merchant.iso_id, tenant.merchant.id, customer_id, subscription_id, currency, subtotal, tax,
        hosted, due_at, now,
    )  # fmt: skip
    if not rows:
        raise NotFoundError("customer", customer_id)
    if subscription_id is not None:  # a drafts read-ahead no longer knows this subscription's
        transaction_state().get("portal.billing.drafts", {}).pop(subscription_id, None)
    added = await _insert_lines(tenant, invoice_id, 0, lines)
    invoice = _invoice(rows[0], added)
    await _emit(tenant, "invoice.created", invoice, actor)
    return invoice


async def add_lines(tenant: Tenant, invoice_id: str, lines: builtins.list[LineInput]) -> Invoice:
    """Append lines to a draft (pending prorations wait on the subscription's draft for its renewal)."""
    invoice = await get(tenant, invoice_id, lock=True)
    check_transition(invoice, "add_lines")
    if len(invoice.lines) + len(lines) > MAX_LINES:
        raise BillingError("too_many_lines", f"at most {MAX_LINES} lines")
    added = await _insert_lines(tenant, invoice_id, len(invoice.lines), lines)
    return _invoice(await _total(invoice_id), [*invoice.lines, *added])


NUMBER_SQL = """
    INSERT INTO portal_billing_invoice_counter AS c (merchant_id, series, iso_id, next_number)
    VALUES ($1, 'invoice', $2, $3 + 1)
    ON CONFLICT (merchant_id, series) DO UPDATE SET next_number = c.next_number + 1
    RETURNING 'INV-' || (c.next_number - 1) AS number
"""
"""Take the merchant's next invoice number (``$1`` merchant, ``$2`` ISO, ``$3`` the first number).

The counter row stays locked until the transaction ends, so numbers are gap-free: a number is
used exactly when the transaction that took it commits.
"""


async def finalize(
    tenant: Tenant, invoice_id: str, *, now: datetime, actor: Actor, draft: Invoice | None = None
) -> Invoice:
    """Number and issue a draft: ``open`` (due at ``due_at``, or now), or ``paid`` when nothing is due.

    Emits ``invoice.finalized`` (and ``invoice.paid`` for an invoice with nothing to pay).
    ``draft`` is the invoice as this transaction created it or holds it locked (it is read, with
    ``FOR UPDATE``, when not given).
    """
    invoice = draft if draft is not None and draft.id == invoice_id else await get(tenant, invoice_id, lock=True)
    check_transition(invoice, "finalize")
    settled = invoice.amount_due == 0
    merchant = tenant.merchant
    rows = await fetch(  # the number and the update in one round trip
        f"""
        WITH taken(taken_number) AS ({NUMBER_SQL})
        UPDATE portal_billing_invoice SET number = taken.taken_number, status = $5, issued_at = $6,
               due_at = COALESCE(due_at, $6), paid_at = CASE WHEN $7 THEN $6::timestamptz END, updated_at = $6
          FROM taken
         WHERE id = $4
        RETURNING {COLUMNS}
        """,
        merchant.id, merchant.iso_id, FIRST_NUMBER, invoice_id, "paid" if settled else "open", now, settled,
    )  # fmt: skip
    invoice = _invoice(rows[0], invoice.lines)  # finalizing leaves the lines as they are
    await _emit(tenant, "invoice.finalized", invoice, actor)
    if settled:
        await _emit(tenant, "invoice.paid", invoice, actor)
    return invoice


async def record_payment(
    tenant: Tenant, invoice_id: str, amount: int, *, now: datetime, actor: Actor, locked: Invoice | None = None
) -> Invoice:
    """Add a payment of ``amount`` to an open or uncollectible invoice; ``paid`` once nothing is due.

    Emits ``invoice.paid`` when the invoice becomes paid. Used by :mod:`portal.billing.charges`.
    ``locked`` is the invoice as this transaction read it ``FOR UPDATE`` (read here when not given).
    """
    invoice = locked if locked is not None and locked.id == invoice_id else await get(tenant, invoice_id, lock=True)
    check_transition(invoice, "pay")
    paid = invoice.amount_paid + amount
    settled = paid >= invoice.total
    rows = await fetch(
        "UPDATE portal_billing_invoice SET amount_paid = $2, amount_due = GREATEST(total - $2, 0), "
        "status = CASE WHEN $3 THEN 'paid' ELSE status END, paid_at = CASE WHEN $3::bool THEN $4::timestamptz END, "
        "updated_at = $4 "
        f"WHERE id = $1 RETURNING {COLUMNS}",
        invoice_id, paid, settled, now,
    )  # fmt: skip
    invoice = _invoice(rows[0], invoice.lines)  # a payment leaves the lines as they are
    if settled:
        await _emit(tenant, "invoice.paid", invoice, actor)
    return invoice


async def _set_status(
    tenant: Tenant, invoice_id: str, action: str, status: InvoiceStatus, event: str, *, now: datetime, actor: Actor
) -> Invoice:
    invoice = await get(tenant, invoice_id, lock=True)
    check_transition(invoice, action)
    rows = await fetch(
        "UPDATE portal_billing_invoice SET status = $2::text, "
        "amount_due = CASE WHEN $2::text = 'void' THEN 0 ELSE amount_due END, "
        f"voided_at = CASE WHEN $2::text = 'void' THEN $3::timestamptz END, updated_at = $3 WHERE id = $1 "
        f"RETURNING {COLUMNS}",
        invoice_id, status, now,
    )  # fmt: skip
    invoice = _invoice(rows[0], invoice.lines)  # a status change leaves the lines as they are
    await _emit(tenant, event, invoice, actor)
    return invoice


async def void(tenant: Tenant, invoice_id: str, *, now: datetime, actor: Actor) -> Invoice:
    """Void an open or uncollectible invoice (nothing more is due); emits ``invoice.voided``."""
    return await _set_status(tenant, invoice_id, "void", "void", "invoice.voided", now=now, actor=actor)


async def mark_uncollectible(tenant: Tenant, invoice_id: str, *, now: datetime, actor: Actor) -> Invoice:
    """Give up collecting an open invoice (it may still be paid); emits ``invoice.marked_uncollectible``."""
    return await _set_status(
        tenant, invoice_id, "mark_uncollectible", "uncollectible", "invoice.marked_uncollectible", now=now, actor=actor
    )


async def _emit(tenant: Tenant, event_type: str, invoice: Invoice, actor: Actor) -> None:
    await emit(
        tenant.merchant, event_type, InvoiceEvent(invoice=invoice), actor=actor, target=("invoice", invoice.id),
        customer_id=invoice.customer, enabled_plugins=tenant.enabled_plugins,
    )  # fmt: skip
