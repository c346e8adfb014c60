"""Billing periods: month ends clamped to the anchor's day, leap years, time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from portal.billing.calendar import add_periods, period_containing

NY, AKL = ZoneInfo("America/New_York"), ZoneInfo("Pacific/Auckland")


def local(tz: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=tz).astimezone(UTC)  # type: ignore[misc]


def test_a_jan_31_anchor_renews_on_feb_29_in_a_leap_year_then_mar_31() -> None:
    anchor = local(NY, 2028, 1, 31, 9, 0)
    feb = add_periods(anchor, anchor, "month", 1, tz="America/New_York")
    mar = add_periods(anchor, feb, "month", 1, tz="America/New_York")
    apr = add_periods(anchor, mar, "month", 1, tz="America/New_York")
    assert feb == local(NY, 2028, 2, 29, 9, 0)
    assert mar == local(NY, 2028, 3, 31, 9, 0)
    assert apr == local(NY, 2028, 4, 30, 9, 0)
    assert add_periods(anchor, anchor, "month", 1, n=3, tz="America/New_York") == apr


def test_a_jan_31_anchor_renews_on_feb_28_in_a_common_year() -> None:
    anchor = local(NY, 2027, 1, 31)
    assert add_periods(anchor, anchor, "month", 1, tz="America/New_York") == local(NY, 2027, 2, 28)


def test_a_feb_29_yearly_anchor_renews_on_feb_28_then_feb_29_again() -> None:
    anchor = local(NY, 2028, 2, 29)
    years = [add_periods(anchor, anchor, "year", 1, n=n, tz="America/New_York") for n in (1, 4)]
    assert years == [local(NY, 2029, 2, 28), local(NY, 2032, 2, 29)]


def test_quarterly_and_multi_week_intervals() -> None:
    anchor = local(NY, 2026, 11, 30)
    assert add_periods(anchor, anchor, "month", 3, tz="America/New_York") == local(NY, 2027, 2, 28)
    assert add_periods(anchor, anchor, "week", 2, tz="America/New_York") == local(NY, 2026, 12, 14)


@pytest.mark.parametrize(
    ("tz", "start", "end", "hours"),
    [
        # New York: EST (-5) to EDT (-4) on 8 March 2026; a period ending at local midnight
        (NY, (2026, 3, 1), (2026, 4, 1), 31 * 24 - 1),
        # Auckland: NZDT (+13) to NZST (+12) on 5 April 2026
        (AKL, (2026, 4, 1), (2026, 5, 1), 30 * 24 + 1),
    ],
)
def test_a_period_ends_at_local_midnight_across_a_dst_change(
    tz: ZoneInfo, start: tuple[int, int, int], end: tuple[int, int, int], hours: int
) -> None:
    anchor = local(tz, *start)
    result = add_periods(anchor, anchor, "month", 1, tz=str(tz))
    assert result == local(tz, *end)
    assert result.astimezone(tz).hour == 0 and result.astimezone(tz).minute == 0
    assert (result - anchor).total_seconds() == hours * 3600


def test_midnight_in_auckland_is_the_previous_day_in_utc() -> None:
    anchor = local(AKL, 2026, 1, 31)  # 11:00 UTC on 30 January
    assert anchor == datetime(2026, 1, 30, 11, 0, tzinfo=UTC)
    feb = add_periods(anchor, anchor, "month", 1, tz="Pacific/Auckland")
    assert feb == local(AKL, 2026, 2, 28) == datetime(2026, 2, 27, 11, 0, tzinfo=UTC)


def test_daily_periods_keep_the_local_time_and_skip_the_missing_hour() -> None:
    anchor = local(NY, 2026, 3, 7, 2, 30)
    # 02:30 does not exist on 8 March 2026 in New York: the instant of 02:30 EST, 03:30 EDT
    assert add_periods(anchor, anchor, "day", 1, tz="America/New_York") == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert add_periods(anchor, anchor, "day", 2, tz="America/New_York") == local(NY, 2026, 3, 9, 2, 30)


def test_the_period_containing_an_instant() -> None:
    anchor = local(NY, 2028, 1, 31)
    start, end = period_containing(anchor, local(NY, 2028, 3, 15), "month", 1, tz="America/New_York")
    assert (start, end) == (local(NY, 2028, 2, 29), local(NY, 2028, 3, 31))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        add_periods(datetime(2026, 1, 1), datetime(2026, 1, 1), "month", 1, tz="UTC")
