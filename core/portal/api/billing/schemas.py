"""Request and response bodies of the billing API (Stripe-shaped: ``object``, lists with ``has_more``).

Money is an integer number of minor units with its ISO 4217 ``currency`` (``3900`` ``USD`` is
$39.00; ``500`` ``JPY`` is ¥500); times are RFC 3339 in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from portal.api.params import Rfc3339
from portal.billing.calendar import Interval
from portal.billing.models import Classification, InvoiceStatus, ProrationBehavior, SubscriptionStatus
from portal.web.input_policy import ONE_LINE

MAX_AMOUNT = 99_999_999_999
"""The largest amount in minor units the API takes (the ledger's limit)."""

ObjectId = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
OneLine = Annotated[str, msgspec.Meta(pattern=ONE_LINE, min_length=1, max_length=200, description="One line of text")]
Currency = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="An ISO 4217 currency code in upper case, like USD or EUR")
]
Amount = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT, description="Minor units of the currency (cents)")]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
Duration = Annotated[
    str, msgspec.Meta(pattern=r"^[1-9][0-9]{0,2}[dhm]$", description="Like 31d, 12h or 30m (at most 999 of the unit)")
]
MerchantField = Annotated[str, msgspec.Meta(max_length=200, description="ISO keys: the merchant's id or slug")]


# --- requests ---------------------------------------------------------------------------------


class ProductCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Create a product."""

    name: OneLine
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    merchant: MerchantField | None = None


class PriceCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Create a recurring price of an active product."""

    product: ObjectId
    currency: Currency
    unit_amount: Amount
    interval: Interval
    interval_count: Annotated[int, msgspec.Meta(ge=1, le=1095)] = 1
    nickname: OneLine | None = None
    merchant: MerchantField | None = None


class SubscriptionCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Subscribe a customer to a price (the customer decides the merchant)."""

    customer: ObjectId
    price: ObjectId
    quantity: Quantity = 1
    trial_end: Rfc3339 | None = None


class SubscriptionUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change a subscription's price or quantity: give at least one."""

    price: ObjectId | msgspec.UnsetType = msgspec.UNSET
    quantity: Quantity | msgspec.UnsetType = msgspec.UNSET
    proration_behavior: ProrationBehavior = "create_prorations"


class SubscriptionChangePreview(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A change to preview: give at least one of price and quantity."""

    price: ObjectId | msgspec.UnsetType = msgspec.UNSET
    quantity: Quantity | msgspec.UnsetType = msgspec.UNSET


class SubscriptionPause(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Pause renewals, until ``resumes_at`` or until resumed."""

    reason: OneLine | None = None
    resumes_at: Rfc3339 | None = None


class SubscriptionCancel(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """End a subscription now, or at the end of its current period."""

    at_period_end: bool = False
    reason: OneLine | None = None
    comment: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class InvoiceLineCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One line of a one-off invoice: ``quantity`` times ``unit_amount``."""

    description: Annotated[str, msgspec.Meta(pattern=ONE_LINE, min_length=1, max_length=500)]
    unit_amount: Amount
    quantity: Quantity = 1


class InvoiceCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A one-off draft invoice for a customer (the customer decides the merchant)."""

    customer: ObjectId
    currency: Currency
    lines: Annotated[list[InvoiceLineCreate], msgspec.Meta(min_length=1, max_length=100)]
    tax: Amount = 0
    """Tax as a plain amount added to the lines' subtotal."""
    due_at: Rfc3339 | None = None


class InvoicePay(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Charge an open invoice now: the customer's default card, or the card named."""

    payment_method: ObjectId | None = None


class ClockAdvance(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Move a sandbox merchant's test clock forward: give ``to`` or ``by``."""

    to: Rfc3339 | None = None
    by: Duration | None = None
    merchant: MerchantField | None = None


# --- answers ----------------------------------------------------------------------------------


class Product(msgspec.Struct, kw_only=True):
    """Something a merchant sells."""

    id: str
    merchant: str
    name: str
    description: str
    active: bool
    created: datetime
    object: Literal["product"] = "product"


class Price(msgspec.Struct, kw_only=True):
    """``unit_amount`` minor units of ``currency`` every ``interval_count`` ``interval`` s."""

    id: str
    merchant: str
    product: str
    currency: str
    unit_amount: int
    interval: Interval
    interval_count: int
    active: bool
    nickname: str | None
    created: datetime
    object: Literal["price"] = "price"


class Subscription(msgspec.Struct, kw_only=True):
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
    cancel_at_period_end: bool
    canceled_at: datetime | None
    cancellation_reason: str | None
    cancellation_comment: str | None
    pause_reason: str | None
    paused_at: datetime | None
    resumes_at: datetime | None
    default_payment_method: str | None
    trial_end: datetime | None
    created: datetime
    object: Literal["subscription"] = "subscription"


class InvoiceLine(msgspec.Struct, kw_only=True):
    """One line: ``amount`` minor units (negative for a proration credit)."""

    id: str
    description: str
    quantity: int
    unit_amount: int
    amount: int
    period_start: datetime | None
    period_end: datetime | None
    proration: bool
    object: Literal["line_item"] = "line_item"


class Invoice(msgspec.Struct, kw_only=True):
    """An invoice: ``total = subtotal + tax``; ``amount_due`` is what is left to pay."""

    id: str
    merchant: str
    customer: str
    number: str | None
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
    created: datetime
    object: Literal["invoice"] = "invoice"


class PaymentAttempt(msgspec.Struct, kw_only=True):
    """One charge of an invoice at the gateway and its answer."""

    id: str
    invoice: str
    payment_method: str
    amount: int
    currency: str
    order_id: str
    outcome: Literal["approved", "declined", "error"]
    classification: Classification
    response_code: int
    response_text: str
    transaction_id: str | None
    attempted_at: datetime
    object: Literal["payment_attempt"] = "payment_attempt"


class InvoicePayment(msgspec.Struct, kw_only=True):
    """What paying an invoice did: the attempt (approved or not) and the invoice after it."""

    invoice: Invoice
    payment: PaymentAttempt
    object: Literal["invoice_payment"] = "invoice_payment"


class ProrationPreview(msgspec.Struct, kw_only=True):
    """The lines a change would bill now and the amount due now (minor units of ``currency``)."""

    subscription: str
    lines: list[InvoiceLine]
    amount_due_now: int
    currency: str
    object: Literal["proration_preview"] = "proration_preview"


class Card(msgspec.Struct, kw_only=True):
    """What may be shown of a card."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int


class PaymentMethod(msgspec.Struct, kw_only=True):
    """A card on file for a customer."""

    id: str
    customer: str
    type: Literal["card"]
    card: Card
    gateway: str
    default: bool
    created: datetime
    object: Literal["payment_method"] = "payment_method"


class TestClock(msgspec.Struct, kw_only=True):
    """A sandbox merchant's clock: the time renewals and charges see."""

    merchant: str
    now: datetime
    frozen: bool
    """True once the clock was set or advanced (a test clock); false: it is the real time."""
    object: Literal["test_clock"] = "test_clock"


class ClockEvent(msgspec.Struct, kw_only=True):
    """An event emitted while the clock moved, at the clock's time then."""

    at: datetime
    id: str
    type: str
    target: str | None


class ClockAdvanced(msgspec.Struct, kw_only=True):
    """What advancing a test clock ran, in order."""

    merchant: str
    previous: datetime
    now: datetime
    steps: int
    renewed: list[str]
    canceled: list[str]
    resumed: list[str]
    invoices: list[str]
    payments_succeeded: list[str]
    payments_failed: list[str]
    tasks_run: int
    webhooks_queued: int
    events: list[ClockEvent]
    object: Literal["test_clock_advance"] = "test_clock_advance"


class ProductList(msgspec.Struct, kw_only=True):
    """A page of products, newest first."""

    data: list[Product]
    has_more: bool
    object: Literal["list"] = "list"


class PriceList(msgspec.Struct, kw_only=True):
    """A page of prices, newest first."""

    data: list[Price]
    has_more: bool
    object: Literal["list"] = "list"


class SubscriptionList(msgspec.Struct, kw_only=True):
    """A page of subscriptions, newest first."""

    data: list[Subscription]
    has_more: bool
    object: Literal["list"] = "list"


class InvoiceList(msgspec.Struct, kw_only=True):
    """A page of invoices, newest first."""

    data: list[Invoice]
    has_more: bool
    object: Literal["list"] = "list"


class PaymentMethodList(msgspec.Struct, kw_only=True):
    """A customer's cards on file, default first."""

    data: list[PaymentMethod]
    has_more: bool
    object: Literal["list"] = "list"
