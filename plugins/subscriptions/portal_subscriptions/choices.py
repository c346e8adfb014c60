"""What a customer chose on a pause, cancel or change form, checked against the merchant's settings.

Each ``*_choice`` function reads the submitted fields and either returns the choice or raises
:class:`FormError` naming each wrong field (answered 400 with the form again), or
:class:`RefusedError` when the choice is one the settings do not offer at all (403).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from portal.sdk import MerchantView
from portal.sdk import gettext as _
from portal_subscriptions.messages import NOT_ALLOWED, contact
from portal_subscriptions.settings import SubscriptionsSettings
from portal_subscriptions.store import StoredSubscription
from portal_subscriptions.views import periods_after

MAX_NOTE = 500
"""Characters of free text kept with a pause reason or a cancellation."""
MAX_PAUSE_DAYS = 365
"""The latest day a pause may end, counted from today."""
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_QUANTITY = re.compile(r"^\d{1,7}$")


class RefusedError(Exception):
    """An action the merchant does not allow (403), or one the ledger refuses now (409)."""

    def __init__(self, message: str, status_code: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class FormError(Exception):
    """Fields to correct: field name to the sentence shown beside it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {text}" for name, text in errors.items()))
        self.errors = errors


def refuse(merchant: MerchantView, what: str) -> RefusedError:
    """The 403 for an action the settings do not allow."""
    return RefusedError(f"{_(NOT_ALLOWED[what])} {contact(merchant)}")


def _note(data: Mapping[str, str], name: str, errors: dict[str, str]) -> str:
    text = " ".join(data.get(name, "").split())
    if len(text) > MAX_NOTE:
        errors[name] = _("Please keep this under %(max)d characters.") % {"max": MAX_NOTE}
    return text


class PauseChoice(msgspec.Struct, frozen=True, kw_only=True):
    """A pause: why, and when it ends."""

    reason: str
    note: str
    duration: str
    """``"1"``, ``"2"``... periods, or ``"until_date"``."""
    resume_on: str
    resumes_at: datetime

    @property
    def ledger_reason(self) -> str:
        """The reason as the ledger keeps it: the chosen one, and the note after a dash."""
        return f"{self.reason} \u2014 {self.note}" if self.note else self.reason


def pause_choice(
    settings: SubscriptionsSettings, sub: StoredSubscription, data: Mapping[str, str], now: datetime, timezone: str
) -> PauseChoice:
    """The pause asked for, in the settings' reasons and durations."""
    errors: dict[str, str] = {}
    reason = data.get("reason", "")
    if reason not in settings.pause_reasons:
        errors["reason"] = _("Please choose a reason.")
    note = _note(data, "note", errors)
    duration = data.get("duration", "")
    allowed = {str(value) for value in settings.pause_durations}
    resume_on = data.get("resume_on", "").strip()
    resumes_at = now
    if duration not in allowed:
        errors["duration"] = _("Please choose how long to pause.")
    elif duration == "until_date":
        zone = ZoneInfo(timezone)
        today = now.astimezone(zone).date()
        day = _parse_day(resume_on)
        if day is None:
            errors["resume_on"] = _("Please enter the day to resume, like 2027-01-31.")
        elif not today < day <= today + timedelta(days=MAX_PAUSE_DAYS):
            errors["resume_on"] = _("Please choose a day after today and within %(days)d days.") % {
                "days": MAX_PAUSE_DAYS
            }
        else:
            at = sub.billing_anchor.astimezone(zone).timetz().replace(tzinfo=None)
            resumes_at = datetime.combine(day, at, tzinfo=zone).astimezone(now.tzinfo)
    else:
        resumes_at = periods_after(sub, int(duration), timezone)
    if errors:
        raise FormError(errors)
    return PauseChoice(reason=reason, note=note, duration=duration, resume_on=resume_on, resumes_at=resumes_at)


def _parse_day(text: str) -> date | None:
    if not _DAY.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


CancelMode = Literal["period_end", "immediately"]


class CancelChoice(msgspec.Struct, frozen=True, kw_only=True):
    """A cancellation: when, why, and the customer's comment."""

    mode: CancelMode
    reason: str | None
    comment: str


def cancel_choice(settings: SubscriptionsSettings, merchant: MerchantView, data: Mapping[str, str]) -> CancelChoice:
    """The cancellation asked for, in the settings' modes and reasons."""
    modes = settings.cancel_modes
    mode = data.get("mode", "") or (modes[0] if len(modes) == 1 else "")
    if mode in ("period_end", "immediately") and mode not in modes:
        raise refuse(merchant, f"cancel_{mode}")
    errors: dict[str, str] = {}
    if mode not in modes:
        errors["mode"] = _("Please choose when the subscription ends.")
    reason = data.get("reason", "") or None
    if reason is not None and reason not in settings.cancel_reasons:
        errors["reason"] = _("Please choose one of the reasons, or none.")
    comment = _note(data, "comment", errors)
    if errors:
        raise FormError(errors)
    return CancelChoice(mode="immediately" if mode == "immediately" else "period_end", reason=reason, comment=comment)


class ChangeChoice(msgspec.Struct, frozen=True, kw_only=True):
    """A change of price and/or quantity."""

    price: str
    quantity: int


def change_choice(
    settings: SubscriptionsSettings, merchant: MerchantView, sub: StoredSubscription, data: Mapping[str, str]
) -> ChangeChoice:
    """The price and quantity asked for: only prices the settings list, quantities up to their maximum."""
    price = data.get("price", "") or sub.price_id
    if price != sub.price_id and (not settings.allow_plan_change or price not in settings.plan_change_prices):
        raise refuse(merchant, "plan")
    raw = data.get("quantity", "").strip() or str(sub.quantity)
    quantity = int(raw) if _QUANTITY.match(raw) else None
    if quantity is not None and quantity != sub.quantity and not settings.allow_quantity_change:
        raise refuse(merchant, "quantity")
    if quantity is None or quantity < 1 or (quantity > settings.quantity_max and quantity != sub.quantity):
        raise FormError(
            {"quantity": _("Please enter a whole number from 1 to %(max)d.") % {"max": settings.quantity_max}}
        )
    if price == sub.price_id and quantity == sub.quantity:
        raise FormError({"quantity": _("That is what you have now. Please choose a different plan or quantity.")})
    return ChangeChoice(price=price, quantity=quantity)
