"""What customers read: reason labels, refusals, and the outcome of each action.

Pages that show an outcome after a redirect carry only its code (``?done=paused``); the words
come from the tables here, so no text from a request reaches a page.
"""

from __future__ import annotations

from portal.sdk import MerchantView

CANCEL_REASON_LABELS: dict[str, str] = {
    "too_expensive": "It's too expensive",
    "missing_features": "Some features are missing",
    "switched_service": "I'm switching to a different service",
    "unused": "I don't use it enough",
    "customer_service": "Customer service was less than expected",
    "too_complex": "Ease of use was less than expected",
    "low_quality": "Quality was less than expected",
    "other": "Other reason",
}
"""Stripe's cancellation reasons, worded as its portal words them."""

NOT_ALLOWED: dict[str, str] = {
    "pause": "Pausing subscriptions is not available here.",
    "cancel": "Cancelling subscriptions is not available here.",
    "cancel_immediately": (
        "Cancelling at once is not available here; a cancellation takes effect at the end of the period."
    ),
    "cancel_period_end": "Cancelling at the end of the period is not available here.",
    "change": "Changing subscriptions is not available here.",
    "plan": "Changing to another plan is not available here.",
    "quantity": "Changing the quantity is not available here.",
}
"""Refusals of what the merchant's settings do not allow (answered 403, nothing written)."""

CONFLICTS: dict[str, str] = {
    "pause": "This subscription cannot be paused now.",
    "resume": "This subscription is not paused.",
    "cancel": "This subscription cannot be cancelled now.",
    "undo_cancel": "No cancellation is scheduled for this subscription.",
    "change": "This subscription cannot be changed now.",
}
"""What the ledger refused, by action (answered 409, nothing written)."""

DONE: dict[str, str] = {
    "paused": "{name} is paused.",
    "resumed": "{name} is active again.",
    "cancel_scheduled": "{name} will end on {period_end}. You can undo this until then.",
    "canceled": "{name} has ended.",
    "cancel_undone": "{name} will go on renewing. Your cancellation was undone.",
    "changed": "{name} was changed.",
}
"""The outcome of each action, shown on the subscription's page after the redirect."""


def contact(merchant: MerchantView) -> str:
    """Who to ask instead."""
    if merchant.brand.support_email:
        return f"Please contact {merchant.name} at {merchant.brand.support_email}."
    return f"Please contact {merchant.name}."
