"""The ledger's objects as the API, events and plugins see them (Stripe-like field names).

Amounts are ``int`` minor units of ``currency``; times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from portal.billing.calendar import Interval

SubscriptionStatus = Literal["trialing", "active", "past_due", "paused", "canceled", "unpaid"]
InvoiceStatus = Literal["draft", "open", "paid", "void", "uncollectible"]
ProrationBehavior = Literal["none", "create_prorations", "always_invoice"]
AttemptOutcome = Literal["approved", "declined", "error"]
Classification = Literal["approved", "retryable", "final"]

SUBSCRIPTION_STATUSES: tuple[SubscriptionStatus, ...] = (
    "trialing", "active", "past_due", "paused", "canceled", "unpaid",
)  # fmt: skip
INVOICE_STATUSES: tuple[InvoiceStatus, ...] = ("draft", "open", "paid", "void", "uncollectible")


class Product(msgspec.Struct, frozen=True, kw_only=True):
    """Something a merchant sells; prices say what it costs."""

    id: str
    merchant: str
    name: str
    description: str
    active: bool
    created_at: datetime


class Price(msgspec.Struct, frozen=True, kw_only=True):
    """A recurring price of a product: ``unit_amount`` per ``interval_count`` ``interval`` s."""

    id: str
    merchant: str
    product: str
    currency: str
    unit_amount: int
    interval: Interval
    interval_count: int
    active: bool
    nickname: str | None
    created_at: datetime


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    """A customer's subscription to a price; the current period is ``[start, end)``."""

    id: str
    merchant: str
    customer: str
    price: str
    quantity: int
    status: SubscriptionStatus
    current_period_start: datetime
    current_period_end: datetime
    billing_anchor: datetime
    """Periods end on the anchor's day of the month and local time of day (clamped to month ends)."""
    cancel_at_period_end: bool
    canceled_at: datetime | None
    cancellation_reason: str | None
    cancellation_comment: str | None
    pause_reason: str | None
    paused_at: datetime | None
    resumes_at: datetime | None
    default_payment_method: str | None
    """A card to charge instead of the customer's default card."""
    trial_end: datetime | None
    created_at: datetime


class InvoiceLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of an invoice: ``amount`` is ``quantity * unit_amount`` (prorations: negative for credit)."""

    id: str
    description: str
    quantity: int
    unit_amount: int
    amount: int
    period_start: datetime | None
    period_end: datetime | None
    proration: bool


class LineInput(msgspec.Struct, frozen=True, kw_only=True):
    """A line to put on a new invoice (one-off invoices, or lines the ledger computes)."""

    description: str
    quantity: int = 1
    unit_amount: int
    amount: int | None = None
    """Defaults to ``quantity * unit_amount``; set for prorations, whose amount is rounded once."""
    period_start: datetime | None = None
    period_end: datetime | None = None
    proration: bool = False
    price: str | None = None


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    """An invoice: ``total = subtotal + tax``; ``amount_due`` is what is left to pay."""

    id: str
    merchant: str
    customer: str
    number: str | None
    """``INV-1001`` onwards per merchant, given when the invoice is finalized (drafts have none)."""
    status: InvoiceStatus
    currency: str
    lines: list[InvoiceLine]
    subtotal: int
    tax: int
    total: int
    amount_paid: int
    amount_due: int
    issued_at: datetime | None
    due_at: datetime | None
    paid_at: datetime | None
    subscription: str | None
    hosted: bool
    """A one-off invoice the merchant created (not a subscription's)."""
    created_at: datetime


class PaymentAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One charge of an invoice at the gateway, with the gateway's answer."""

    id: str
    invoice: str
    payment_method: str
    amount: int
    currency: str
    order_id: str
    """``<invoice id>-<attempt number>``: the gateway never charges one order id twice."""
    outcome: AttemptOutcome
    classification: Classification
    response_code: int
    response_text: str
    transaction_id: str | None
    attempted_at: datetime
