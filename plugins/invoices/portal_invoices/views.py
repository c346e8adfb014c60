"""Invoices as pages show them: amounts and dates pre-formatted, statuses as badges.

Dates are on the merchant's calendar (its time zone), words and numbers in the customer's
locale (Babel).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import msgspec
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, get_currency_precision

from portal.sdk import Invoice, format_money, pgettext
from portal.sdk import gettext as _
from portal_invoices.messages import outcome_text
from portal_invoices.store import ListedInvoice, Payment

BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover"}


class Formats(msgspec.Struct, frozen=True, kw_only=True):
    """How one page writes dates and money: the merchant's time zone, the customer's locale."""

    timezone: str
    locale: str

    def local_date(self, at: datetime) -> date:
        """The merchant's calendar day of the instant ``at``."""
        return at.astimezone(ZoneInfo(self.timezone)).date()

    def day(self, at: datetime) -> str:
        """``Dec 5, 2026`` (in en-US) for the instant ``at``."""
        return _day(self.local_date(at), self.locale.replace("-", "_"))

    def money(self, amount: int, currency: str) -> str:
        """``$3,420.00`` (in en-US)."""
        return _money(amount, currency, self.locale.replace("-", "_"))

    def round_money(self, amount: int, currency: str) -> str:
        """``$3,420`` for a whole amount, ``$3,420.50`` otherwise (the Overview's figures)."""
        return _round_money(amount, currency, self.locale.replace("-", "_"))

    def number(self, value: int) -> str:
        """``1,234`` (in en-US)."""
        return str(format_decimal(value, locale=self.locale.replace("-", "_")))

    def year_start(self, now: datetime) -> datetime:
        """The first instant of ``now``'s year on the merchant's calendar."""
        zone = ZoneInfo(self.timezone)
        return datetime(now.astimezone(zone).year, 1, 1, tzinfo=zone).astimezone(UTC)


def formats_for(timezone: str, locale: str) -> Formats:
    """The page's formats: the merchant's time zone, ``locale`` (the request's, already one Babel knows)."""
    return Formats(timezone=timezone, locale=locale)


@lru_cache(maxsize=4096)
def _day(day: date, locale: str) -> str:
    return str(format_date(day, "medium", locale=locale))


@lru_cache(maxsize=4096)
def _money(amount: int, currency: str, locale: str) -> str:
    return format_money(amount, currency, locale)


@lru_cache(maxsize=1024)
def _round_money(amount: int, currency: str, locale: str) -> str:
    digits = get_currency_precision(currency)
    if digits == 0 or amount % 10**digits:
        return format_money(amount, currency, locale)
    pattern = Locale.parse(locale).currency_formats["standard"].pattern.split(";")[0]
    whole = pattern.replace(".00", "").replace(",00", "")
    return str(format_currency(amount // 10**digits, currency, format=whole, locale=locale, currency_digits=False))


class Badge(msgspec.Struct, frozen=True, kw_only=True):
    """A status badge: its words and tone (``success``, ``info``, ``warning``, ``danger``, ``neutral``)."""

    text: str
    tone: str


def badge(status: str, due_at: datetime | None, now: datetime) -> Badge:
    """Open, Paid, Past due or Void."""
    if status == "paid":
        return Badge(text=pgettext("invoice status", "Paid"), tone="success")
    if status == "void":
        return Badge(text=pgettext("invoice status", "Void"), tone="neutral")
    if status == "uncollectible" or (due_at is not None and due_at < now):
        return Badge(text=pgettext("invoice status", "Past due"), tone="danger")
    return Badge(text=pgettext("invoice status", "Open"), tone="info")


def payable(status: str, amount_due: int) -> bool:
    """Whether the invoice can be paid now."""
    return status in ("open", "uncollectible") and amount_due > 0


class InvoiceRow(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the invoice list."""

    id: str
    number: str
    issued: str
    due: str
    total: str
    amount_due: str
    badge: Badge
    payable: bool


def invoice_row(invoice: ListedInvoice | Invoice, fmt: Formats, now: datetime) -> InvoiceRow:
    """The list's line for ``invoice``."""
    return InvoiceRow(
        id=invoice.id,
        number=invoice.number or _("Draft"),
        issued=fmt.day(invoice.issued_at) if invoice.issued_at else "",
        due=fmt.day(invoice.due_at) if invoice.due_at else "",
        total=fmt.money(invoice.total, invoice.currency),
        amount_due=fmt.money(invoice.amount_due, invoice.currency),
        badge=badge(invoice.status, invoice.due_at, now),
        payable=payable(invoice.status, invoice.amount_due),
    )


def card_words(brand: str | None, last4: str | None) -> str:
    """``Visa ending in 4242``."""
    if not last4:
        return _("A card no longer on file")
    return _("%(brand)s ending in %(last4)s") % {"brand": BRANDS.get(brand or "") or _("Card"), "last4": last4}


class PaymentRow(msgspec.Struct, frozen=True, kw_only=True):
    """One payment attempt as the detail and history pages show it."""

    id: str
    invoice_id: str
    invoice_number: str
    date: str
    amount: str
    card: str
    approved: bool
    outcome: str
    transaction_id: str | None


def payment_row(payment: Payment, fmt: Formats) -> PaymentRow:
    """The page's line for one payment attempt."""
    return PaymentRow(
        id=payment.id,
        invoice_id=payment.invoice_id,
        invoice_number=payment.invoice_number,
        date=fmt.day(payment.attempted_at),
        amount=fmt.money(payment.amount, payment.currency),
        card=card_words(payment.brand, payment.last4),
        approved=payment.outcome == "approved",
        outcome=outcome_text(payment.outcome, payment.response_code, payment.response_text),
        transaction_id=payment.transaction_id,
    )
