"""The events the cards plugin emits (audited, and sent to the merchant's webhooks)."""

from __future__ import annotations

import msgspec

from portal.sdk import EventType


class PaymentMethodPayload(msgspec.Struct, frozen=True, kw_only=True):
    """A card on file as events carry it: never the number, only what the portal keeps."""

    id: str
    customer: str
    type: str = "card"
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    gateway: str


class DefaultChangedPayload(msgspec.Struct, frozen=True, kw_only=True):
    """The customer's default card changed (``previous`` is ``None`` for the first card)."""

    id: str | None
    customer: str
    previous: str | None
    reason: str
    """``chosen`` by the customer, ``first_card``, ``replaced`` (card update flow) or ``removed``."""


ADDED = "payment_method.added"
REMOVED = "payment_method.removed"
DEFAULT_CHANGED = "payment_method.default_changed"

EVENT_TYPES = [
    EventType(name=ADDED, payload=PaymentMethodPayload, description="A customer added a card."),
    EventType(name=REMOVED, payload=PaymentMethodPayload, description="A customer removed a card."),
    EventType(
        name=DEFAULT_CHANGED,
        payload=DefaultChangedPayload,
        description="The card charged by default changed.",
    ),
]
