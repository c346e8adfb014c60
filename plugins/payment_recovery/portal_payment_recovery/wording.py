"""How a failed charge reads to the customer: "$39.00 for Monthly Bread Box on May 5"."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from babel.dates import format_date

from portal.sdk import MerchantView, fetch, format_money
from portal_payment_recovery.store import Case


class FailedCharge(msgspec.Struct, frozen=True, kw_only=True):
    """The parts of a failed charge, formatted for the merchant's locale and time zone."""

    amount: str
    what: str
    """The plan (product) name of a subscription's invoice, else "invoice INV-1042"."""
    date: str
    invoice_number: str | None

    @property
    def phrase(self) -> str:
        """``$39.00 for Monthly Bread Box on May 5``."""
        return f"{self.amount} for {self.what} on {self.date}"


def local_date(merchant: MerchantView, at: datetime) -> str:
    """``May 5``: the day of ``at`` in the merchant's time zone, in its locale."""
    day = at.astimezone(ZoneInfo(merchant.timezone)).date()
    return format_date(day, "MMMM d", locale=merchant.locale.replace("-", "_") or "en_US")


async def describe(merchant: MerchantView, cases: list[Case]) -> list[FailedCharge]:
    """Each case's failed charge in words (one query; call inside the tenant transaction)."""
    if not cases:
        return []
    rows = await fetch(
        "SELECT i.id, i.number, p.name AS plan FROM portal_billing_invoice i "
        "LEFT JOIN portal_billing_subscription s ON s.id = i.subscription_id AND s.merchant_id = i.merchant_id "
        "LEFT JOIN portal_billing_price pr ON pr.id = s.price_id "
        "LEFT JOIN portal_billing_product p ON p.id = pr.product_id "
        "WHERE i.merchant_id = $1 AND i.id = ANY($2::text[])",
        merchant.id,
        [case.invoice_id for case in cases],
    )
    found = {row["id"]: row for row in rows}
    locale = merchant.locale.replace("-", "_") or "en_US"
    charges = []
    for case in cases:
        row = found.get(case.invoice_id, {})
        number = row.get("number")
        what = row.get("plan") or (f"invoice {number}" if number else "your invoice")
        charges.append(
            FailedCharge(
                amount=format_money(case.amount, case.currency, locale),
                what=what,
                date=local_date(merchant, case.failed_at),
                invoice_number=number,
            )
        )
    return charges


def join_phrases(charges: list[FailedCharge]) -> str | None:
    """The charges as one phrase ("A and B"), or ``None`` for none."""
    phrases = [charge.phrase for charge in charges]
    if not phrases:
        return None
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
