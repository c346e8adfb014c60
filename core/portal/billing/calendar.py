"""Billing periods: calendar arithmetic in the merchant's time zone.

Months and years are counted on the calendar, clamped to the month's last day relative to the
anchor's day (an anchor on Jan 31 renews on Feb 28 or 29, then Mar 31); days and weeks are
calendar days, so a period keeps its local time of day across daylight-saving changes. A local
time that does not exist (the hour clocks skip) lands on the same instant the earlier offset
gives, one hour later on the wall clock; an ambiguous one takes its first occurrence.
"""

from __future__ import annotations

import calendar as _calendar
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Interval = Literal["day", "week", "month", "year"]
INTERVALS: tuple[Interval, ...] = ("day", "week", "month", "year")


def _months(interval: Interval, count: int) -> int:
    return count * (12 if interval == "year" else 1)


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, _calendar.monthrange(year, month)[1]))


def local_datetime(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``day`` at wall-clock ``at`` in ``tz``, as a UTC instant (first occurrence when ambiguous)."""
    return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz).astimezone(UTC)


def add_periods(anchor: datetime, start: datetime, interval: Interval, count: int, n: int = 1, *, tz: str) -> datetime:
    """The end of ``n`` periods of ``count`` ``interval`` s from ``start``, as a UTC instant.

    The result keeps the anchor's local time of day and, for months and years, the anchor's day
    of the month, clamped to the target month's length.
    """
    if anchor.tzinfo is None or start.tzinfo is None:
        raise ValueError("billing times are timezone-aware")
    if count < 1 or n < 0:
        raise ValueError("count must be positive and n non-negative")
    zone = ZoneInfo(tz)
    local_anchor = anchor.astimezone(zone)
    local_start = start.astimezone(zone)
    if interval in ("day", "week"):
        days = count * n * (7 if interval == "week" else 1)
        day = local_start.date() + timedelta(days=days)
    else:
        months = local_start.year * 12 + (local_start.month - 1) + _months(interval, count) * n
        day = _clamped(months // 12, months % 12 + 1, local_anchor.day)
    return local_datetime(day, local_anchor.timetz(), zone)


def period_containing(
    anchor: datetime, at: datetime, interval: Interval, count: int, *, tz: str
) -> tuple[datetime, datetime]:
    """The period ``[start, end)`` of the schedule anchored at ``anchor`` that contains ``at`` (``at >= anchor``)."""
    start = anchor.astimezone(UTC)
    end = add_periods(anchor, start, interval, count, tz=tz)
    while end <= at:
        start, end = end, add_periods(anchor, end, interval, count, tz=tz)
    return start, end
