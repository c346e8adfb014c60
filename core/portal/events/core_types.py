"""Event types core itself emits; the plugin registry adds them to plugins' own."""

from __future__ import annotations

import msgspec

from portal.plugin import EventType


class CustomerPayload(msgspec.Struct, frozen=True, kw_only=True):
    """A customer as events carry it."""

    id: str
    merchant: str
    email: str
    name: str
    external_ref: str | None


class SessionPayload(msgspec.Struct, frozen=True, kw_only=True):
    """A customer's portal session as events carry it."""

    customer: str
    link: str | None
    purpose: str | None
    flow: str | None


CORE_EVENT_TYPES: tuple[EventType, ...] = (
    EventType(name="customer.created", payload=CustomerPayload, description="A customer was created."),
    EventType(name="customer.updated", payload=CustomerPayload, description="A customer was changed."),
    EventType(
        name="portal_session.started",
        payload=SessionPayload,
        description="A customer opened the portal with a link.",
    ),
    EventType(name="portal_session.ended", payload=SessionPayload, description="A customer signed out."),
)
"""Customers changing, and customers signing in and out of the portal."""
