"""Subscriptions as pages show them: every amount and date pre-formatted for the customer.

Dates are in the merchant's time zone, words and numbers in the request's locale (Babel, with
``current_locale()``), and every sentence in the request's language.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import msgspec
from babel.dates import format_date

from portal.sdk import add_periods, current_locale, format_money, ngettext
from portal.sdk import gettext as _
from portal_subscriptions.settings import DEFAULT_PAUSE_REASONS
from portal_subscriptions.store import PlanOption, StoredSubscription

LIVE = frozenset({"trialing", "active", "past_due"})
"""Statuses that renew and charge."""

Interval = Literal["day", "week", "month", "year"]


class Formats(msgspec.Struct, frozen=True, kw_only=True):
    """How one page writes dates and money: the merchant's time zone, the customer's locale."""

    timezone: str
    locale: str

    def day(self, at: datetime) -> str:
        """``Dec 5, 2026`` (in en-US) for the instant ``at``, on the merchant's calendar."""
        return self.calendar_day(self.local_date(at))

    def calendar_day(self, day: date) -> str:
        """A calendar day in the customer's locale."""
        return _day(day, self.babel_locale)

    def local_date(self, at: datetime) -> date:
        """The merchant's calendar day of the instant ``at``."""
        return at.astimezone(ZoneInfo(self.timezone)).date()

    def money(self, amount: int, currency: str) -> str:
        """``$39.00`` (in en-US)."""
        return _money(amount, currency, self.babel_locale)

    @property
    def babel_locale(self) -> str:
        """The locale as Babel spells it (``en_US``)."""
        return self.locale.replace("-", "_")


def formats_for(timezone: str, locale: str | None = None) -> Formats:
    """The page's formats: the merchant's time zone and ``locale``, by default the request's."""
    return Formats(timezone=timezone, locale=locale or current_locale())


@lru_cache(maxsize=4096)
def _day(day: date, locale: str) -> str:
    return str(format_date(day, "medium", locale=locale))  # Babel is slow: a list repeats few days


@lru_cache(maxsize=4096)
def _money(amount: int, currency: str, locale: str) -> str:
    return format_money(amount, currency, locale)


class Badge(msgspec.Struct, frozen=True, kw_only=True):
    """A status badge: its words and its colour (``success``, ``info``, ``warning``, ``danger``)."""

    text: str
    tone: str


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    """A subscription ready for a template; every string is pre-formatted."""

    id: str
    name: str
    """``Monthly Bread Box``, with the price's nickname when it has one."""
    quantity: int
    price: str
    """``$39.00 / month`` (per unit)."""
    amount: str
    """``$78.00 / month`` (all units)."""
    status: str
    badge: Badge
    period: str
    """``Nov 20, 2026 \u2013 Dec 20, 2026`` (an en dash between)."""
    period_end: str
    next_charge_date: str | None
    next_charge_amount: str | None
    next_charge_note: str
    """A sentence about the next charge, or why there is none."""
    pause_reason: str | None
    live: bool
    paused: bool
    canceling: bool
    canceled: bool


def per_interval(amount: str, interval: str, count: int) -> str:
    """``$39.00 / month``, ``$39.00 every 3 months``, in the current language."""
    if interval == "day":
        text = ngettext("%(amount)s / day", "%(amount)s every %(count)d days", count)
    elif interval == "week":
        text = ngettext("%(amount)s / week", "%(amount)s every %(count)d weeks", count)
    elif interval == "year":
        text = ngettext("%(amount)s / year", "%(amount)s every %(count)d years", count)
    else:
        text = ngettext("%(amount)s / month", "%(amount)s every %(count)d months", count)
    return text % {"amount": amount, "count": count}


def pause_reason_text(reason: str, offered: tuple[str, ...]) -> str:
    """A pause reason as the customer reads it: the default ones translated, a merchant's own as given.

    ``offered`` is the merchant's list: when it is the default one, its reasons are translated. The
    ledger keeps ``reason — note``; only the reason before the dash is translated, never the note.
    """
    if offered != DEFAULT_PAUSE_REASONS:
        return reason
    head, dash, note = reason.partition(" \u2014 ")
    return f"{_(head)}{dash}{note}" if head in DEFAULT_PAUSE_REASONS else reason


def plan_name(product_name: str, nickname: str | None) -> str:
    """The product's name, with the price's nickname: ``Pinnacle Pro (Team)``."""
    return f"{product_name} ({nickname})" if nickname else product_name


def next_boundary(sub: StoredSubscription, at: datetime, timezone: str) -> datetime:
    """The first period end of ``sub`` at or after ``at`` (periods roll on while it is paused)."""
    boundary = sub.current_period_end
    interval = cast(Interval, sub.interval)
    for _step in range(1200):  # a pause lasts at most a year: 366 daily periods
        if boundary >= at:
            return boundary
        boundary = add_periods(sub.billing_anchor, boundary, interval, sub.interval_count, tz=timezone)
    return boundary


def periods_after(sub: StoredSubscription, periods: int, timezone: str) -> datetime:
    """The end of the ``periods``-th period after the current one."""
    interval = cast(Interval, sub.interval)
    return add_periods(sub.billing_anchor, sub.current_period_end, interval, sub.interval_count, periods, tz=timezone)


def next_charge(sub: StoredSubscription, timezone: str) -> datetime | None:
    """When the subscription next charges, if it will."""
    if sub.status in LIVE and not sub.cancel_at_period_end:
        return sub.current_period_end
    if sub.status == "paused" and sub.resumes_at is not None and not sub.cancel_at_period_end:
        return next_boundary(sub, sub.resumes_at, timezone)
    return None


def _badge(sub: StoredSubscription, fmt: Formats) -> Badge:
    if sub.status == "canceled":
        return Badge(text=_("Canceled"), tone="danger")
    if sub.cancel_at_period_end:
        return Badge(text=_("Cancels on %(day)s") % {"day": fmt.day(sub.current_period_end)}, tone="warning")
    if sub.status == "paused":
        if sub.resumes_at:
            return Badge(text=_("Paused until %(day)s") % {"day": fmt.day(sub.resumes_at)}, tone="warning")
        return Badge(text=_("Paused"), tone="warning")
    if sub.status == "trialing":
        return Badge(text=_("Trialing"), tone="info")
    if sub.status == "past_due":
        return Badge(text=_("Past due"), tone="danger")
    if sub.status == "unpaid":
        return Badge(text=_("Unpaid"), tone="danger")
    return Badge(text=_("Active"), tone="success")


def _note(sub: StoredSubscription, fmt: Formats, when: datetime | None, amount: str) -> str:
    if when is not None:
        values = {"amount": amount, "day": fmt.day(when)}
        if sub.status == "trialing":
            return _("Your trial ends and %(amount)s will be charged on %(day)s.") % values
        return _("%(amount)s will be charged on %(day)s.") % values
    if sub.status == "canceled":
        ended = sub.canceled_at or sub.current_period_end
        return _("Ended on %(day)s. No further charges.") % {"day": fmt.day(ended)}
    if sub.cancel_at_period_end:
        return _("Ends on %(day)s. No further charges.") % {"day": fmt.day(sub.current_period_end)}
    if sub.status == "paused":
        return _("Paused until you resume it. No charges meanwhile.")
    return _("No charges until the open invoice is paid.")


def subscription_view(sub: StoredSubscription, fmt: Formats) -> SubscriptionView:
    """A stored subscription as a page shows it."""
    when = next_charge(sub, fmt.timezone)
    amount = fmt.money(sub.amount + sub.pending, sub.currency)
    return SubscriptionView(
        id=sub.id,
        name=plan_name(sub.product_name, sub.nickname),
        quantity=sub.quantity,
        price=per_interval(fmt.money(sub.unit_amount, sub.currency), sub.interval, sub.interval_count),
        amount=per_interval(fmt.money(sub.amount, sub.currency), sub.interval, sub.interval_count),
        status=sub.status,
        badge=_badge(sub, fmt),
        period=f"{fmt.day(sub.current_period_start)} \u2013 {fmt.day(sub.current_period_end)}",
        period_end=fmt.day(sub.current_period_end),
        next_charge_date=fmt.day(when) if when else None,
        next_charge_amount=amount if when else None,
        next_charge_note=_note(sub, fmt, when, amount),
        pause_reason=sub.pause_reason,
        live=sub.status in LIVE,
        paused=sub.status == "paused",
        canceling=sub.cancel_at_period_end and sub.status != "canceled",
        canceled=sub.status == "canceled",
    )


class PlanView(msgspec.Struct, frozen=True, kw_only=True):
    """A price a customer may choose, pre-formatted."""

    id: str
    name: str
    price: str


def plan_view(option: PlanOption, fmt: Formats) -> PlanView:
    """A plan option as the change form shows it."""
    return PlanView(
        id=option.id,
        name=plan_name(option.product_name, option.nickname),
        price=per_interval(fmt.money(option.unit_amount, option.currency), option.interval, option.interval_count),
    )


def widget_data(subs: list[StoredSubscription], fmt: Formats) -> dict[str, Any]:
    """The Overview block: how many are active or paused, and the next charge of all of them."""
    views = [subscription_view(sub, fmt) for sub in subs]
    active = sum(1 for sub in subs if sub.status in LIVE)
    paused = sum(1 for sub in subs if sub.status == "paused")
    upcoming = [(when, sub) for sub in subs if (when := next_charge(sub, fmt.timezone)) is not None]
    first = min(upcoming, key=lambda item: item[0], default=None)
    view = next((v for v in views if first is not None and v.id == first[1].id), None)
    return {"active": active, "paused": paused, "total": len(subs), "next": view}
