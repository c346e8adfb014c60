"""Core's words for its own events: the ledger's (invoices, subscriptions, payments) and customers'.

A subscription's own invoices are not listed apart: the renewal line says what was charged,
and their payment is listed only when it came later than the invoice (after a failed charge).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from portal.activity.formats import ActivityFormat
from portal.i18n import N_, gettext
from portal.plugin import ActivityDescription, ActivityEvent, ActivityLine

PAID_WITH_RENEWAL = timedelta(hours=1)
"""A subscription invoice paid within this of its issue was paid by the renewal itself."""


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _invoice(event: ActivityEvent) -> dict[str, Any]:
    invoice = event.data.get("invoice")
    return invoice if isinstance(invoice, dict) else {}


INVOICE_WORDS: dict[str, tuple[str, str]] = {
    "issued": (N_("Invoice %(number)s issued"), N_("An invoice issued")),
    "paid": (N_("Invoice %(number)s paid"), N_("An invoice paid")),
    "voided": (N_("Invoice %(number)s voided"), N_("An invoice voided")),
    "marked uncollectible": (N_("Invoice %(number)s marked uncollectible"), N_("An invoice marked uncollectible")),
}
"""An invoice event's line, with the invoice's number and without (translated when shown)."""


def _invoice_text(invoice: dict[str, Any], words: str) -> str:
    named, unnamed = INVOICE_WORDS[words]
    number = invoice.get("number")
    return gettext(named) % {"number": number} if number else gettext(unnamed)


def _total(invoice: dict[str, Any], fmt: ActivityFormat, field: str = "total") -> str | None:
    amount, currency = invoice.get(field), invoice.get("currency")
    return fmt.money(amount, currency) if isinstance(amount, int) and isinstance(currency, str) else None


def invoice_issued(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine | None:
    """``Invoice INV-1117 issued`` · ``$3,420`` · ``Due May 12`` (a subscription's invoices are left out)."""
    invoice = _invoice(event)
    if invoice.get("subscription"):
        return None
    due = _time(invoice.get("due_at"))
    open_ = due is not None and invoice.get("status") == "open"
    when = gettext("Due %(date)s") % {"date": fmt.date(due)} if open_ and due is not None else None
    return ActivityLine(
        text=_invoice_text(invoice, "issued"),
        amount=_total(invoice, fmt),
        when=when,
        at=_time(invoice.get("issued_at")),
    )


def invoice_paid(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine | None:
    """``Invoice INV-1042 paid`` · ``$1,240`` · ``Apr 4``; a renewal's invoice paid at once is left out."""
    invoice = _invoice(event)
    paid, issued = _time(invoice.get("paid_at")), _time(invoice.get("issued_at"))
    if invoice.get("subscription") and paid is not None and issued is not None and paid - issued < PAID_WITH_RENEWAL:
        return None
    return ActivityLine(text=_invoice_text(invoice, "paid"), amount=_total(invoice, fmt, "amount_paid"), at=paid)


def _invoice_line(words: str) -> Any:
    def describe(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
        invoice = _invoice(event)
        return ActivityLine(text=_invoice_text(invoice, words), amount=_total(invoice, fmt))

    describe.__doc__ = f"``Invoice INV-1042 {words}`` with its total."
    return describe


def payment_failed(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Payment for invoice INV-1117 failed`` · ``$39`` · the attempt's day."""
    invoice = _invoice(event)
    attempt = event.data.get("attempt")
    attempt = attempt if isinstance(attempt, dict) else {}
    if invoice.get("number"):
        text = gettext("Payment for invoice %(number)s failed") % {"number": invoice["number"]}
    else:
        text = gettext("Payment for an invoice failed")
    amount = attempt.get("amount")
    currency = attempt.get("currency")
    money = fmt.money(amount, currency) if isinstance(amount, int) and isinstance(currency, str) else None
    return ActivityLine(text=text, amount=money, at=_time(attempt.get("attempted_at")))


SUBSCRIPTION_WORDS: dict[str, tuple[str, str]] = {
    "started": (N_("Subscription %(product)s started"), N_("A subscription started")),
    "renewed": (N_("Subscription %(product)s renewed"), N_("A subscription renewed")),
    "paused": (N_("Subscription %(product)s paused"), N_("A subscription paused")),
    "set to end": (N_("Subscription %(product)s set to end"), N_("A subscription set to end")),
    "resumed": (N_("Subscription %(product)s resumed"), N_("A subscription resumed")),
    "canceled": (N_("Subscription %(product)s canceled"), N_("A subscription canceled")),
    "will continue": (N_("Subscription %(product)s will continue"), N_("A subscription will continue")),
    "changed": (N_("Subscription %(product)s changed"), N_("A subscription changed")),
    "past due": (N_("Subscription %(product)s past due"), N_("A subscription past due")),
    "unpaid": (N_("Subscription %(product)s unpaid"), N_("A subscription unpaid")),
    "active again": (N_("Subscription %(product)s active again"), N_("A subscription active again")),
}
"""A subscription event's line, with the product's name and without (translated when shown)."""


def _plan_text(event: ActivityEvent, words: str) -> str:
    named, unnamed = SUBSCRIPTION_WORDS[words]
    product = event.related.get("product")
    return gettext(named) % {"product": product} if isinstance(product, str) and product else gettext(unnamed)


def _subscription(event: ActivityEvent) -> dict[str, Any]:
    subscription = event.data.get("subscription")
    return subscription if isinstance(subscription, dict) else {}


def _charged(event: ActivityEvent, fmt: ActivityFormat) -> str | None:
    total, currency = event.related.get("invoice_total"), event.related.get("invoice_currency")
    return fmt.money(total, currency) if isinstance(total, int) and isinstance(currency, str) else None


def subscription_started(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box started`` · what its first invoice charged."""
    at = _time(_subscription(event).get("current_period_start"))
    return ActivityLine(text=_plan_text(event, "started"), amount=_charged(event, fmt), at=at)


def subscription_renewed(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box renewed`` · ``$39`` · the new period's first day."""
    at = _time(_subscription(event).get("current_period_start"))
    return ActivityLine(text=_plan_text(event, "renewed"), amount=_charged(event, fmt), at=at)


def subscription_paused(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box paused`` · ``Resumes Jun 1`` when it resumes by itself."""
    resumes = _time(_subscription(event).get("resumes_at"))
    when = gettext("Resumes %(date)s") % {"date": fmt.date(resumes)} if resumes is not None else None
    return ActivityLine(text=_plan_text(event, "paused"), when=when)


def subscription_cancel_scheduled(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box set to end`` · ``Ends May 31``."""
    ends = _time(_subscription(event).get("current_period_end"))
    when = gettext("Ends %(date)s") % {"date": fmt.date(ends)} if ends else None
    return ActivityLine(text=_plan_text(event, "set to end"), when=when)


def _subscription_line(words: str) -> Any:
    def describe(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
        return ActivityLine(text=_plan_text(event, words))

    describe.__doc__ = f"``Subscription Monthly Bread Box {words}``."
    return describe


STATUS_WORDS = {"past_due": "past due", "unpaid": "unpaid", "active": "active again", "canceled": "canceled"}
"""The line of a change to these statuses; a change to another status reads ``changed``."""


def subscription_updated(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box past due`` after a status change, else ``... changed`` (plan, quantity)."""
    status, previous = _subscription(event).get("status"), event.data.get("previous_status")
    if isinstance(status, str) and previous and status != previous:
        return ActivityLine(text=_plan_text(event, STATUS_WORDS.get(status, "changed")))
    return ActivityLine(text=_plan_text(event, "changed"))


def customer_updated(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Billing details updated`` or ``Account details updated``."""
    after = event.after or {}
    billing = "billing_details" in after
    return ActivityLine(text=gettext("Billing details updated") if billing else gettext("Account details updated"))


def _fixed(text: str) -> Any:
    def describe(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
        return ActivityLine(text=gettext(text))

    describe.__doc__ = f"``{text}``."
    return describe


CORE_ACTIVITY: tuple[ActivityDescription, ...] = (
    ActivityDescription(event_type="invoice.finalized", describe=invoice_issued),
    ActivityDescription(event_type="invoice.paid", describe=invoice_paid),
    ActivityDescription(event_type="invoice.voided", describe=_invoice_line("voided")),
    ActivityDescription(event_type="invoice.marked_uncollectible", describe=_invoice_line("marked uncollectible")),
    ActivityDescription(event_type="invoice.payment_failed", describe=payment_failed),
    ActivityDescription(event_type="subscription.created", describe=subscription_started),
    ActivityDescription(event_type="subscription.renewed", describe=subscription_renewed),
    ActivityDescription(event_type="subscription.updated", describe=subscription_updated),
    ActivityDescription(event_type="subscription.paused", describe=subscription_paused),
    ActivityDescription(event_type="subscription.resumed", describe=_subscription_line("resumed")),
    ActivityDescription(event_type="subscription.canceled", describe=_subscription_line("canceled")),
    ActivityDescription(event_type="subscription.cancel_scheduled", describe=subscription_cancel_scheduled),
    ActivityDescription(event_type="subscription.cancel_unscheduled", describe=_subscription_line("will continue")),
    ActivityDescription(event_type="customer.created", describe=_fixed(N_("Account opened"))),
    ActivityDescription(event_type="customer.updated", describe=customer_updated),
)
"""The events core describes; ``invoice.created`` (drafts) and ``payment.*`` (the invoice lines say
it) are left out, and so are session starts and ends."""
