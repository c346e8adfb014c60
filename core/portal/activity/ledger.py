"""Core's words for its own events: the ledger's (invoices, subscriptions, payments) and customers'.

A subscription's own invoices are not listed apart: the renewal line says what was charged,
and their payment is listed only when it came later than the invoice (after a failed charge).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from portal.activity.formats import ActivityFormat
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


def _invoice_name(invoice: dict[str, Any]) -> str:
    return f"Invoice {invoice['number']}" if invoice.get("number") else "An invoice"


def _total(invoice: dict[str, Any], fmt: ActivityFormat, field: str = "total") -> str | None:
    amount, currency = invoice.get(field), invoice.get("currency")
    return fmt.money(amount, currency) if isinstance(amount, int) and isinstance(currency, str) else None


def invoice_issued(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine | None:
    """``Invoice INV-1117 issued`` · ``$3,420`` · ``Due May 12`` (a subscription's invoices are left out)."""
    invoice = _invoice(event)
    if invoice.get("subscription"):
        return None
    due = _time(invoice.get("due_at"))
    when = f"Due {fmt.date(due)}" if due is not None and invoice.get("status") == "open" else None
    return ActivityLine(
        text=f"{_invoice_name(invoice)} issued",
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
    return ActivityLine(text=f"{_invoice_name(invoice)} paid", amount=_total(invoice, fmt, "amount_paid"), at=paid)


def _invoice_line(words: str) -> Any:
    def describe(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
        invoice = _invoice(event)
        return ActivityLine(text=f"{_invoice_name(invoice)} {words}", amount=_total(invoice, fmt))

    describe.__doc__ = f"``Invoice INV-1042 {words}`` with its total."
    return describe


def payment_failed(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Payment for invoice INV-1117 failed`` · ``$39`` · the attempt's day."""
    invoice = _invoice(event)
    attempt = event.data.get("attempt")
    attempt = attempt if isinstance(attempt, dict) else {}
    name = f"invoice {invoice['number']}" if invoice.get("number") else "an invoice"
    amount = attempt.get("amount")
    currency = attempt.get("currency")
    money = fmt.money(amount, currency) if isinstance(amount, int) and isinstance(currency, str) else None
    return ActivityLine(text=f"Payment for {name} failed", amount=money, at=_time(attempt.get("attempted_at")))


def _plan(event: ActivityEvent) -> str:
    product = event.related.get("product")
    return f"Subscription {product}" if isinstance(product, str) and product else "A subscription"


def _subscription(event: ActivityEvent) -> dict[str, Any]:
    subscription = event.data.get("subscription")
    return subscription if isinstance(subscription, dict) else {}


def _charged(event: ActivityEvent, fmt: ActivityFormat) -> str | None:
    total, currency = event.related.get("invoice_total"), event.related.get("invoice_currency")
    return fmt.money(total, currency) if isinstance(total, int) and isinstance(currency, str) else None


def subscription_started(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box started`` · what its first invoice charged."""
    at = _time(_subscription(event).get("current_period_start"))
    return ActivityLine(text=f"{_plan(event)} started", amount=_charged(event, fmt), at=at)


def subscription_renewed(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box renewed`` · ``$39`` · the new period's first day."""
    at = _time(_subscription(event).get("current_period_start"))
    return ActivityLine(text=f"{_plan(event)} renewed", amount=_charged(event, fmt), at=at)


def subscription_paused(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box paused`` · ``Resumes Jun 1`` when it resumes by itself."""
    resumes = _time(_subscription(event).get("resumes_at"))
    when = f"Resumes {fmt.date(resumes)}" if resumes is not None else None
    return ActivityLine(text=f"{_plan(event)} paused", when=when)


def subscription_cancel_scheduled(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box set to end`` · ``Ends May 31``."""
    ends = _time(_subscription(event).get("current_period_end"))
    return ActivityLine(text=f"{_plan(event)} set to end", when=f"Ends {fmt.date(ends)}" if ends else None)


def _subscription_line(words: str) -> Any:
    def describe(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
        return ActivityLine(text=f"{_plan(event)} {words}")

    describe.__doc__ = f"``Subscription Monthly Bread Box {words}``."
    return describe


STATUS_WORDS = {"past_due": "past due", "unpaid": "unpaid", "active": "active again", "canceled": "canceled"}


def subscription_updated(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Subscription Monthly Bread Box past due`` after a status change, else ``... changed`` (plan, quantity)."""
    status, previous = _subscription(event).get("status"), event.data.get("previous_status")
    if isinstance(status, str) and previous and status != previous:
        return ActivityLine(text=f"{_plan(event)} {STATUS_WORDS.get(status, status.replace('_', ' '))}")
    return ActivityLine(text=f"{_plan(event)} changed")


def customer_updated(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Billing details updated`` or ``Account details updated``."""
    after = event.after or {}
    return ActivityLine(text="Billing details updated" if "billing_details" in after else "Account details updated")


def _fixed(text: str) -> Any:
    def describe(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
        return ActivityLine(text=text)

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
    ActivityDescription(event_type="customer.created", describe=_fixed("Account opened")),
    ActivityDescription(event_type="customer.updated", describe=customer_updated),
)
"""The events core describes; ``invoice.created`` (drafts) and ``payment.*`` (the invoice lines say
it) are left out, and so are session starts and ends."""
