"""What customers read: reason labels, refusals, and the outcome of each action.

Pages that show an outcome after a redirect carry only its code (``?done=paused``); the words
come from the tables here, so no text from a request reaches a page. The tables hold the English
wording, marked for translation; it is translated where it is shown (``_(NOT_ALLOWED[what])``).
"""

from __future__ import annotations

from portal.sdk import N_, MerchantView, pgettext
from portal.sdk import gettext as _

CANCEL_REASON_LABELS: dict[str, str] = {
    "too_expensive": N_("It's too expensive"),
    "missing_features": N_("Some features are missing"),
    "switched_service": N_("I'm switching to a different service"),
    "unused": N_("I don't use it enough"),
    "customer_service": N_("Customer service was less than expected"),
    "too_complex": N_("Ease of use was less than expected"),
    "low_quality": N_("Quality was less than expected"),
    "other": N_("Other reason"),
}
"""Stripe's cancellation reasons, worded as its portal words them."""

NOT_ALLOWED: dict[str, str] = {
    "pause": N_("Pausing subscriptions is not available here."),
    "cancel": N_("Cancelling subscriptions is not available here."),
    "cancel_immediately": N_(
        "Cancelling at once is not available here; a cancellation takes effect at the end of the period."
    ),
    "cancel_period_end": N_("Cancelling at the end of the period is not available here."),
    "change": N_("Changing subscriptions is not available here."),
    "plan": N_("Changing to another plan is not available here."),
    "quantity": N_("Changing the quantity is not available here."),
}
"""Refusals of what the merchant's settings do not allow (answered 403, nothing written)."""

CONFLICTS: dict[str, str] = {
    "pause": N_("This subscription cannot be paused now."),
    "resume": N_("This subscription is not paused."),
    "cancel": N_("This subscription cannot be cancelled now."),
    "undo_cancel": N_("No cancellation is scheduled for this subscription."),
    "change": N_("This subscription cannot be changed now."),
}
"""What the ledger refused, by action (answered 409, nothing written)."""

DONE: dict[str, str] = {
    "paused": N_("%(name)s is paused."),
    "resumed": N_("%(name)s is active again."),
    "cancel_scheduled": N_("%(name)s will end on %(period_end)s. You can undo this until then."),
    "canceled": N_("%(name)s has ended."),
    "cancel_undone": N_("%(name)s will go on renewing. Your cancellation was undone."),
    "changed": N_("%(name)s was changed."),
}
"""The outcome of each action, shown on the subscription's page after the redirect."""


def cancel_reason_label(code: str) -> str:
    """A cancellation reason in the current language (Stripe's codes; an unknown code as given)."""
    label = CANCEL_REASON_LABELS.get(code)
    return _(label) if label is not None else code


def done_notice(what: str, name: str, period_end: str) -> str | None:
    """The outcome ``what`` in the current language, or ``None`` for a code that is not one."""
    text = DONE.get(what)
    return _(text) % {"name": name, "period_end": period_end} if text is not None else None


def invoice_status(status: str) -> str:
    """An invoice's status as the subscription's page lists it, in the current language."""
    labels = {
        "draft": pgettext("invoice status", "Draft"),
        "open": pgettext("invoice status", "Open"),
        "paid": pgettext("invoice status", "Paid"),
        "void": pgettext("invoice status", "Void"),
        "uncollectible": pgettext("invoice status", "Uncollectible"),
    }
    return labels.get(status) or status.replace("_", " ").capitalize()


def contact(merchant: MerchantView) -> str:
    """Who to ask instead, in the current language."""
    if merchant.brand.support_email:
        return _("Please contact %(merchant)s at %(email)s.") % {
            "merchant": merchant.name,
            "email": merchant.brand.support_email,
        }
    return _("Please contact %(merchant)s.") % {"merchant": merchant.name}
