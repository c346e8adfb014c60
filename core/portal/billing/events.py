"""The ledger's event types and their payloads; the plugin registry adds them to core's built-ins.

Every state change emits its event in the same transaction as the change (``portal.events.bus.emit``),
so a webhook or a plugin handler sees exactly the changes that committed.
"""

from __future__ import annotations

import msgspec

from portal.billing.models import Classification, Invoice, PaymentAttempt, Subscription, SubscriptionStatus
from portal.plugin import EventType


class SubscriptionEvent(msgspec.Struct, frozen=True, kw_only=True):
    """``subscription.*``: the subscription as it is after the change."""

    subscription: Subscription
    previous_status: SubscriptionStatus | None = None
    """The status before the change (``None`` for ``subscription.created``)."""
    invoice: str | None = None
    """The invoice the change created (a renewal's, or prorations billed at once), if any."""


class InvoiceEvent(msgspec.Struct, frozen=True, kw_only=True):
    """``invoice.created|finalized|paid|voided|marked_uncollectible``: the invoice after the change."""

    invoice: Invoice


class InvoicePaymentFailed(msgspec.Struct, frozen=True, kw_only=True):
    """``invoice.payment_failed``: the invoice (still open) and the declined or failed attempt."""

    invoice: Invoice
    attempt: PaymentAttempt
    classification: Classification
    """``retryable`` (a soft decline or processor trouble: a later retry may succeed) or ``final``."""


class PaymentEvent(msgspec.Struct, frozen=True, kw_only=True):
    """``payment.succeeded|failed``: one charge attempt at the gateway and what it paid."""

    attempt: PaymentAttempt
    invoice: str
    customer: str
    subscription: str | None


def _types(payload: type[msgspec.Struct], descriptions: dict[str, str]) -> list[EventType]:
    return [EventType(name=name, payload=payload, description=text) for name, text in descriptions.items()]


BILLING_EVENT_TYPES: list[EventType] = [
    *_types(
        SubscriptionEvent,
        {
            "subscription.created": "A subscription was created.",
            "subscription.updated": "A subscription's price, quantity or status changed.",
            "subscription.renewed": "A subscription entered its next period.",
            "subscription.paused": "A subscription's renewals were paused.",
            "subscription.resumed": "A paused subscription was resumed.",
            "subscription.canceled": "A subscription ended.",
            "subscription.cancel_scheduled": "A subscription was set to end at the end of its period.",
            "subscription.cancel_unscheduled": "A scheduled cancellation was undone.",
        },
    ),
    *_types(
        InvoiceEvent,
        {
            "invoice.created": "A draft invoice was created.",
            "invoice.finalized": "An invoice was numbered and issued (open, or paid when nothing is due).",
            "invoice.paid": "An invoice was paid in full.",
            "invoice.voided": "An invoice was voided.",
            "invoice.marked_uncollectible": "An invoice was marked uncollectible.",
        },
    ),
    *_types(InvoicePaymentFailed, {"invoice.payment_failed": "A charge of an invoice was declined or failed."}),
    *_types(
        PaymentEvent,
        {
            "payment.succeeded": "A charge at the gateway was approved.",
            "payment.failed": "A charge at the gateway was declined or failed.",
        },
    ),
]
"""Subscriptions, invoices and payments changing."""
