"""Recovery cases in the database: one per failed invoice, read and written in the caller's tenant transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from portal.sdk import fetch, new_id

Status = Literal["open", "recovered", "exhausted"]
Cause = Literal["soft", "hard"]

COLUMNS = (
    "id, merchant_id, customer_id, invoice_id, subscription_id, amount, currency, cause, status, failed_at, "
    "planned, retries, next_retry_at, emails, next_email_at, resolved_at, recovered_amount"
)


class Case(msgspec.Struct, frozen=True, kw_only=True):
    """An invoice whose charge failed, and where its recovery stands."""

    id: str
    merchant_id: str
    customer_id: str
    invoice_id: str
    subscription_id: str | None
    amount: int
    currency: str
    cause: Cause
    """``soft`` (a retryable decline: charged again on the schedule) or ``hard`` (a final one: email only)."""
    status: Status
    failed_at: datetime
    """The merchant's time (its test clock, if any) of the first failed charge; the schedule counts from it."""
    planned: bool
    retries: int
    next_retry_at: datetime | None
    emails: int
    next_email_at: datetime | None
    resolved_at: datetime | None
    recovered_amount: int | None


def _case(row: dict[str, Any]) -> Case:
    return msgspec.convert(row, Case)


async def open_case(
    iso_id: str,
    merchant_id: str,
    *,
    customer_id: str,
    invoice_id: str,
    subscription_id: str | None,
    amount: int,
    currency: str,
    cause: Cause,
    failed_at: datetime,
) -> Case | None:
    """Start recovering an invoice; ``None`` when it already has a case (a handler run twice, a later decline)."""
    rows = await fetch(
        f"INSERT INTO recovery_case (id, iso_id, merchant_id, customer_id, invoice_id, subscription_id, amount, "
        f"currency, cause, failed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        f"ON CONFLICT (merchant_id, invoice_id) DO NOTHING RETURNING {COLUMNS}",
        new_id("rcv"), iso_id, merchant_id, customer_id, invoice_id, subscription_id, amount, currency, cause,
        failed_at,
    )  # fmt: skip
    return _case(rows[0]) if rows else None


async def get(merchant_id: str, case_id: str, *, lock: bool = False) -> Case | None:
    """One case of the merchant (locked ``FOR UPDATE`` when asked)."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM recovery_case WHERE merchant_id = $1 AND id = $2{' FOR UPDATE' if lock else ''}",
        merchant_id,
        case_id,
    )
    return _case(rows[0]) if rows else None


async def for_invoice(merchant_id: str, invoice_id: str, *, lock: bool = False) -> Case | None:
    """The invoice's case, if it has one."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM recovery_case WHERE merchant_id = $1 AND invoice_id = $2"
        f"{' FOR UPDATE' if lock else ''}",
        merchant_id,
        invoice_id,
    )
    return _case(rows[0]) if rows else None


async def open_cases(merchant_id: str, customer_id: str, *, lock: bool = False) -> list[Case]:
    """The customer's cases still open, oldest failure first."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM recovery_case WHERE merchant_id = $1 AND customer_id = $2 AND status = 'open' "
        f"ORDER BY failed_at, id{' FOR UPDATE' if lock else ''}",
        merchant_id,
        customer_id,
    )
    return [_case(row) for row in rows]


async def update(merchant_id: str, case_id: str, **changes: Any) -> Case:
    """Set columns of a case (names from this module's callers only) and return it."""
    names = list(changes)
    assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(names, start=3))
    rows = await fetch(
        f"UPDATE recovery_case SET {assignments} WHERE merchant_id = $1 AND id = $2 RETURNING {COLUMNS}",
        merchant_id,
        case_id,
        *changes.values(),
    )
    return _case(rows[0])


async def add_link(iso_id: str, merchant_id: str, case_id: str, link_id: str) -> None:
    """Remember that ``link_id`` was emailed for the case."""
    await fetch(
        "INSERT INTO recovery_link (link_id, iso_id, merchant_id, case_id) VALUES ($1, $2, $3, $4)",
        link_id,
        iso_id,
        merchant_id,
        case_id,
    )


async def case_of_link(merchant_id: str, link_id: str) -> Case | None:
    """The case an emailed link was sent for."""
    rows = await fetch(
        f"SELECT {', '.join('c.' + column.strip() for column in COLUMNS.split(','))} "
        "FROM recovery_link l JOIN recovery_case c ON c.id = l.case_id "
        "WHERE l.merchant_id = $1 AND l.link_id = $2",
        merchant_id,
        link_id,
    )
    return _case(rows[0]) if rows else None


async def links_of(merchant_id: str, case_id: str) -> list[str]:
    """Every link emailed for the case."""
    rows = await fetch(
        "SELECT link_id FROM recovery_link WHERE merchant_id = $1 AND case_id = $2", merchant_id, case_id
    )
    return [row["link_id"] for row in rows]


async def due(merchant_id: str, now: datetime) -> list[Case]:
    """Open cases of the merchant with a retry or an email due at ``now``."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM recovery_case WHERE merchant_id = $1 AND status = 'open' "
        "AND (next_retry_at <= $2 OR next_email_at <= $2) ORDER BY id FOR UPDATE SKIP LOCKED",
        merchant_id,
        now,
    )
    return [_case(row) for row in rows]


async def merchants_with_open_cases() -> list[str]:
    """Merchants of the transaction's ISO with a case in recovery."""
    rows = await fetch("SELECT DISTINCT merchant_id FROM recovery_case WHERE status = 'open' ORDER BY merchant_id")
    return [row["merchant_id"] for row in rows]


async def recovered_with_link(merchant_id: str, customer_id: str, link_id: str) -> list[Case]:
    """The customer's cases a card update through ``link_id`` (the session's link) recovered."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM recovery_case WHERE merchant_id = $1 AND customer_id = $2 AND status = 'recovered' "
        "AND recovered_link_id = $3 ORDER BY failed_at, id",
        merchant_id,
        customer_id,
        link_id,
    )
    return [_case(row) for row in rows]


async def in_period(merchant_id: str, start: datetime, end: datetime) -> list[Case]:
    """Cases whose first failure fell in ``[start, end)``."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM recovery_case WHERE merchant_id = $1 AND failed_at >= $2 AND failed_at < $3",
        merchant_id,
        start,
        end,
    )
    return [_case(row) for row in rows]


async def invoice_status(merchant_id: str, invoice_id: str) -> str | None:
    """The invoice's status in the ledger (``None``: no such invoice)."""
    rows = await fetch(
        "SELECT status FROM portal_billing_invoice WHERE merchant_id = $1 AND id = $2", merchant_id, invoice_id
    )
    return str(rows[0]["status"]) if rows else None
