"""How a subscription reads in every state: its badge, its next charge, and why there is none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portal_subscriptions.store import StoredSubscription
from portal_subscriptions.views import formats_for, subscription_view, widget_data

START = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # 9:00 in New York
END = datetime(2026, 12, 20, 14, 0, tzinfo=UTC)
FMT = formats_for("America/New_York", "en_US")


def stored(**changes: Any) -> StoredSubscription:
    values: dict[str, Any] = {
        "id": "sub_01m8aaaaaaaaaaaaaaaaaaaaaa", "price_id": "price_01m8aaaaaaaaaaaaaaaaaaaaaa", "quantity": 2,
        "status": "active", "current_period_start": START, "current_period_end": END, "billing_anchor": START,
        "cancel_at_period_end": False, "canceled_at": None, "pause_reason": None, "resumes_at": None,
        "trial_end": None, "default_payment_method": None, "created_at": START, "currency": "USD",
        "unit_amount": 3900, "interval": "month", "interval_count": 1, "nickname": None,
        "product_name": "Monthly Bread Box", "pending": 0,
    }  # fmt: skip
    return StoredSubscription(**{**values, **changes})


@pytest.mark.parametrize(
    ("changes", "badge", "tone", "next_charge", "note"),
    [
        ({}, "Active", "success", "Dec 20, 2026", "$78.00 will be charged on Dec 20, 2026."),
        ({"status": "trialing", "trial_end": END}, "Trialing", "info", "Dec 20, 2026", "Your trial ends and $78.00"),
        ({"status": "past_due"}, "Past due", "danger", "Dec 20, 2026", "$78.00 will be charged"),
        ({"status": "unpaid"}, "Unpaid", "danger", None, "No charges until the open invoice is paid."),
        ({"cancel_at_period_end": True}, "Cancels on Dec 20, 2026", "warning", None, "Ends on Dec 20, 2026."),
        ({"status": "paused"}, "Paused", "warning", None, "Paused until you resume it."),
        (  # a pause that ends mid-period charges at the period end after it
            {"status": "paused", "resumes_at": END + timedelta(days=10)},
            "Paused until Dec 30, 2026",
            "warning",
            "Jan 20, 2027",
            "$78.00 will be charged on Jan 20, 2027.",
        ),
        (
            {"status": "canceled", "canceled_at": START + timedelta(days=3)},
            "Canceled",
            "danger",
            None,
            "Ended on Nov 23, 2026. No further charges.",
        ),
        ({"pending": 1250}, "Active", "success", "Dec 20, 2026", "$90.50 will be charged on Dec 20, 2026."),
        ({"nickname": "Team", "interval": "year", "interval_count": 1}, "Active", "success", "Dec 20, 2026", "$78.00"),
    ],
)
def test_each_state_reads_as_it_should(
    changes: dict[str, Any], badge: str, tone: str, next_charge: str | None, note: str
) -> None:
    view = subscription_view(stored(**changes), FMT)
    assert (view.badge.text, view.badge.tone) == (badge, tone)
    assert view.next_charge_date == next_charge
    assert note in view.next_charge_note


def test_names_amounts_and_intervals() -> None:
    yearly = subscription_view(stored(nickname="Team", interval="month", interval_count=3), FMT)
    assert yearly.name == "Monthly Bread Box (Team)"
    assert (yearly.price, yearly.amount) == ("$39.00 every 3 months", "$78.00 every 3 months")
    assert yearly.period == "Nov 20, 2026 \u2013 Dec 20, 2026"


def test_the_widget_counts_live_and_paused_and_picks_the_earliest_charge() -> None:
    later = stored(id="sub_01m8bbbbbbbbbbbbbbbbbbbbbb", current_period_end=END + timedelta(days=5))
    paused = stored(id="sub_01m8cccccccccccccccccccccc", status="paused")
    ended = stored(id="sub_01m8dddddddddddddddddddddd", status="canceled", canceled_at=START)
    data = widget_data([later, stored(), paused, ended], FMT)
    assert (data["active"], data["paused"], data["total"]) == (2, 1, 4)
    assert data["next"].id == stored().id and data["next"].next_charge_date == "Dec 20, 2026"
    assert widget_data([], FMT) == {"active": 0, "paused": 0, "total": 0, "next": None}
