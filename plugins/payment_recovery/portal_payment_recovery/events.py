"""The events payment recovery emits (audited, and sent to the merchant's webhooks); none carries a link's token."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from portal.sdk import EventType

Trigger = Literal["schedule", "card_update"]
Via = Literal["schedule", "card_update", "other"]
Kind = Literal["dunning", "reminder"]


class EmailSent(msgspec.Struct, frozen=True, kw_only=True):
    """A dunning email or reminder went out with a fresh update-your-card link (its id, never its token)."""

    case: str
    invoice: str
    customer: str
    kind: Kind
    link: str
    link_expires_at: datetime


class LinkOpened(msgspec.Struct, frozen=True, kw_only=True):
    """The customer opened an emailed update-your-card link."""

    case: str
    invoice: str
    customer: str
    link: str


class RetryOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """``recovery.retry_succeeded|retry_failed``: one charge of the invoice and how it went."""

    case: str
    invoice: str
    customer: str
    trigger: Trigger
    """``schedule`` (a retry on the merchant's schedule) or ``card_update`` (the customer saved a card)."""
    attempt: str | None
    """The ledger's payment attempt (``pay_…``); ``None`` when there was no card to charge."""
    amount: int
    currency: str
    response_code: int | None
    response_text: str
    classification: Literal["approved", "retryable", "final"] | None


class Recovered(msgspec.Struct, frozen=True, kw_only=True):
    """The invoice in recovery was paid."""

    case: str
    invoice: str
    customer: str
    amount: int
    currency: str
    via: Via
    """A scheduled retry, the customer's new card, or a payment outside recovery (the invoice paid otherwise)."""
    seconds_to_recover: int


class Exhausted(msgspec.Struct, frozen=True, kw_only=True):
    """Recovery ended without payment: the subscription took the merchant's final action, or the invoice was voided."""

    case: str
    invoice: str
    customer: str
    subscription: str | None
    reason: Literal["retries_exhausted", "final_decline", "invoice_voided"]
    action: Literal["unpaid", "canceled", "none"]
    """What became of the subscription (``none``: no subscription, or it was no longer past due)."""


EMAIL_SENT = "recovery.email_sent"
LINK_OPENED = "recovery.link_opened"
RETRY_SUCCEEDED = "recovery.retry_succeeded"
RETRY_FAILED = "recovery.retry_failed"
RECOVERED = "recovery.recovered"
EXHAUSTED = "recovery.exhausted"

EVENT_TYPES = [
    EventType(name=EMAIL_SENT, payload=EmailSent, description="A dunning email or reminder was sent."),
    EventType(name=LINK_OPENED, payload=LinkOpened, description="A customer opened an update-your-card link."),
    EventType(name=RETRY_SUCCEEDED, payload=RetryOutcome, description="A recovery charge was approved."),
    EventType(name=RETRY_FAILED, payload=RetryOutcome, description="A recovery charge was declined or failed."),
    EventType(name=RECOVERED, payload=Recovered, description="An invoice in recovery was paid."),
    EventType(name=EXHAUSTED, payload=Exhausted, description="Recovery of an invoice ended unpaid."),
]
