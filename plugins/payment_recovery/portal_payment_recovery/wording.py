"""How a failed charge reads to the customer: "$39.00 for Monthly Bread Box on May 5".

A :class:`FailedCharge` keeps the charge's facts and words them when it is shown: money and
dates by Babel in the locale of the page or email being written (``current_locale()``), in the
merchant's time zone, and its phrases in that page's or email's language.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from babel.dates import format_skeleton
from babel.lists import format_list

from portal.sdk import MerchantView, current_locale, fetch, format_money
from portal.sdk import gettext as _
from portal_payment_recovery.store import Case


def local_date(timezone: str, at: datetime) -> str:
    """``May 5`` (``5 de mayo``, ``5. Mai``): the day of ``at`` in ``timezone``, in the current locale."""
    day = at.astimezone(ZoneInfo(timezone)).date()
    return str(format_skeleton("MMMMd", day, locale=current_locale()))


class FailedCharge(msgspec.Struct, frozen=True, kw_only=True):
    """A failed charge of a case, worded in the current language when it is read."""

    minor_amount: int
    currency: str
    failed_at: datetime
    paid_at: datetime | None
    """When the invoice was paid (a recovered case), else ``None``."""
    timezone: str
    """The merchant's time zone, in which the dates are written."""
    plan: str | None
    invoice_number: str | None

    @property
    def amount(self) -> str:
        """``$39.00`` (``39,00 US$`` in Spanish)."""
        return format_money(self.minor_amount, self.currency, current_locale())

    @property
    def what(self) -> str:
        """The plan (product) name of a subscription's invoice, else "invoice INV-1042"."""
        if self.plan:
            return self.plan
        if self.invoice_number:
            return _("invoice %(number)s") % {"number": self.invoice_number}
        return _("your invoice")

    @property
    def date(self) -> str:
        """The day the charge failed, in the merchant's time zone."""
        return local_date(self.timezone, self.failed_at)

    @property
    def paid_on(self) -> str | None:
        """The day the invoice was paid, in the merchant's time zone (``None`` while unpaid)."""
        return local_date(self.timezone, self.paid_at) if self.paid_at is not None else None

    @property
    def phrase(self) -> str:
        """``$39.00 for Monthly Bread Box on May 5``."""
        return _("%(amount)s for %(what)s on %(date)s") % {"amount": self.amount, "what": self.what, "date": self.date}


async def describe(merchant: MerchantView, cases: list[Case]) -> list[FailedCharge]:
    """Each case's failed charge (one query; call inside the tenant transaction)."""
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
    charges = []
    for case in cases:
        row = found.get(case.invoice_id, {})
        charges.append(
            FailedCharge(
                minor_amount=case.amount,
                currency=case.currency,
                failed_at=case.failed_at,
                paid_at=case.resolved_at if case.status == "recovered" else None,
                timezone=merchant.timezone,
                plan=row.get("plan") or None,
                invoice_number=row.get("number"),
            )
        )
    return charges


def join_phrases(charges: list[FailedCharge]) -> str | None:
    """The charges as one phrase ("A and B", "A y B"), or ``None`` for none (call where it is shown)."""
    phrases = [charge.phrase for charge in charges]
    if not phrases:
        return None
    return str(format_list(phrases, locale=current_locale()))
