"""The plugin's reads of the ledger and its own two tables, one statement each.

Every read is scoped to one merchant and one customer, so another customer's or merchant's
invoice reads as missing (row-level security keeps other ISOs out). Callers run inside the
merchant's tenant transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from portal.sdk import fetch

Filter = Literal["all", "open", "paid"]
PAGE_SIZE = 25

LIST_COLUMNS = "id, number, status, currency, total, amount_due, amount_paid, issued_at, due_at, paid_at"


class ListedInvoice(msgspec.Struct, frozen=True, kw_only=True):
    """An invoice as the list shows it (no lines)."""

    id: str
    number: str
    status: str
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    issued_at: datetime
    due_at: datetime | None
    paid_at: datetime | None


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    """One payment attempt with the card it went to and the invoice it was for."""

    id: str
    invoice_id: str
    invoice_number: str
    amount: int
    currency: str
    outcome: str
    response_code: int
    response_text: str
    transaction_id: str | None
    attempted_at: datetime
    brand: str | None
    last4: str | None


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """The Overview's figures of one currency."""

    currency: str
    outstanding: int
    paid_this_year: int
    count: int


def _statuses(wanted: Filter, show_void: bool) -> list[str]:
    if wanted == "open":
        return ["open", "uncollectible"]
    if wanted == "paid":
        return ["paid"]
    return ["open", "uncollectible", "paid", *(["void"] if show_void else [])]


async def invoice_page(
    merchant_id: str, customer_id: str, wanted: Filter, *, show_void: bool, after: str | None
) -> tuple[list[ListedInvoice], bool]:
    """Up to :data:`PAGE_SIZE` issued invoices, newest first, after the invoice ``after``; and whether more follow."""
    rows = await fetch(
        f"""
        SELECT {LIST_COLUMNS} FROM portal_billing_invoice
         WHERE merchant_id = $1 AND customer_id = $2 AND status = ANY($3::text[]) AND number IS NOT NULL
           AND ($4::text IS NULL OR (issued_at, id) < (
                SELECT issued_at, id FROM portal_billing_invoice
                 WHERE merchant_id = $1 AND customer_id = $2 AND id = $4 AND issued_at IS NOT NULL))
         ORDER BY issued_at DESC, id DESC
         LIMIT $5
        """,
        merchant_id, customer_id, _statuses(wanted, show_void), after, PAGE_SIZE + 1,
    )  # fmt: skip
    found = [msgspec.convert(row, ListedInvoice) for row in rows]
    return found[:PAGE_SIZE], len(found) > PAGE_SIZE


async def totals(merchant_id: str, customer_id: str, year_start: datetime, *, show_void: bool) -> list[Totals]:
    """Outstanding, paid since ``year_start`` and the invoice count, per currency (one statement)."""
    rows = await fetch(
        """
        SELECT currency,
               COALESCE(sum(amount_due) FILTER (WHERE status IN ('open', 'uncollectible')), 0)::bigint AS outstanding,
               COALESCE(sum(amount_paid) FILTER (WHERE status = 'paid' AND paid_at >= $3), 0)::bigint
                   AS paid_this_year,
               count(*) FILTER (WHERE status <> 'void' OR $4) AS count
          FROM portal_billing_invoice
         WHERE merchant_id = $1 AND customer_id = $2 AND number IS NOT NULL
         GROUP BY currency ORDER BY currency
        """,
        merchant_id,
        customer_id,
        year_start,
        show_void,
    )
    return [msgspec.convert(row, Totals) for row in rows]


PAYMENT_SQL = """
    SELECT a.id, a.invoice_id, i.number AS invoice_number, a.amount, a.currency, a.outcome, a.response_code,
           a.response_text, a.transaction_id, a.attempted_at, m.brand, m.last4
      FROM portal_billing_payment_attempt a
      JOIN portal_billing_invoice i ON i.id = a.invoice_id AND i.merchant_id = a.merchant_id
      LEFT JOIN portal_payment_method m ON m.id = a.payment_method_id AND m.merchant_id = a.merchant_id
     WHERE a.merchant_id = $1 AND i.customer_id = $2 AND a.outcome IS NOT NULL
"""


async def payments_of_invoice(merchant_id: str, customer_id: str, invoice_id: str) -> list[Payment]:
    """The invoice's answered payment attempts, oldest first."""
    rows = await fetch(PAYMENT_SQL + " AND a.invoice_id = $3 ORDER BY a.attempt_number", merchant_id, customer_id,
                       invoice_id)  # fmt: skip
    return [msgspec.convert(row, Payment) for row in rows]


async def payments_of_customer(merchant_id: str, customer_id: str, *, limit: int = 200) -> list[Payment]:
    """Every answered payment attempt of the customer, newest first."""
    rows = await fetch(PAYMENT_SQL + " ORDER BY a.attempted_at DESC, a.id DESC LIMIT $3", merchant_id, customer_id,
                       limit)  # fmt: skip
    return [msgspec.convert(row, Payment) for row in rows]


async def kept_pdf(merchant_id: str, invoice_id: str, kind: str, language: str) -> bytes | None:
    """The PDF kept for the invoice (``issued`` or ``paid``) in ``language``, if it was rendered already."""
    rows = await fetch(
        "SELECT content FROM invoices_pdf WHERE merchant_id = $1 AND invoice_id = $2 AND kind = $3 AND language = $4",
        merchant_id,
        invoice_id,
        kind,
        language,
    )
    return bytes(rows[0]["content"]) if rows else None


async def keep_pdf(iso_id: str, merchant_id: str, invoice_id: str, kind: str, language: str, content: bytes) -> bytes:
    """Keep ``content`` as the invoice's PDF of ``kind`` in ``language`` unless one was kept first; the kept bytes."""
    rows = await fetch(
        "INSERT INTO invoices_pdf (invoice_id, kind, language, iso_id, merchant_id, content) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (invoice_id, kind, language) DO NOTHING RETURNING content",
        invoice_id, kind, language, iso_id, merchant_id, content,
    )  # fmt: skip
    return bytes(rows[0]["content"]) if rows else (await kept_pdf(merchant_id, invoice_id, kind, language) or content)


async def claim_pay_key(iso_id: str, merchant_id: str, customer_id: str, invoice_id: str, key: str) -> bool:
    """Take the pay form's one-use key for this invoice; False when a request took it already."""
    rows = await fetch(
        "INSERT INTO invoices_pay_key (key, iso_id, merchant_id, customer_id, invoice_id) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (key) DO NOTHING RETURNING key",
        key, iso_id, merchant_id, customer_id, invoice_id,
    )  # fmt: skip
    return bool(rows)


async def pay_key(merchant_id: str, customer_id: str, key: str) -> dict[str, Any] | None:
    """What the request that took ``key`` recorded (``outcome`` NULL while it is still paying)."""
    rows = await fetch(
        "SELECT invoice_id, attempt_id, outcome, message FROM invoices_pay_key "
        "WHERE merchant_id = $1 AND customer_id = $2 AND key = $3",
        merchant_id,
        customer_id,
        key,
    )
    return rows[0] if rows else None


async def settle_pay_key(merchant_id: str, key: str, attempt_id: str | None, outcome: str, message: str) -> None:
    """Record how the payment of ``key`` ended."""
    await fetch(
        "UPDATE invoices_pay_key SET attempt_id = $3, outcome = $4, message = $5 WHERE merchant_id = $1 AND key = $2",
        merchant_id, key, attempt_id, outcome, message[:500],
    )  # fmt: skip


async def payment(merchant_id: str, customer_id: str, payment_id: str) -> Payment | None:
    """One answered payment attempt of the customer."""
    rows = await fetch(PAYMENT_SQL + " AND a.id = $3", merchant_id, customer_id, payment_id)
    return msgspec.convert(rows[0], Payment) if rows else None


async def open_count(merchant_id: str, customer_id: str) -> int:
    """How many of the customer's invoices are open (issued, not yet paid)."""
    rows = await fetch(
        "SELECT count(*) AS n FROM portal_billing_invoice WHERE merchant_id = $1 AND customer_id = $2 "
        "AND status = 'open' AND number IS NOT NULL",
        merchant_id,
        customer_id,
    )
    return int(rows[0]["n"])
