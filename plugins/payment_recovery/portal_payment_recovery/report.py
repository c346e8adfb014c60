"""The recovery report: failed invoices of a period, what was recovered, how fast, by cause.

Money stays integer minor units (one amount per currency); the rate is a decimal string.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

import msgspec

from portal_payment_recovery.store import Case


class Amount(msgspec.Struct, kw_only=True):
    """An amount in integer minor units of one currency."""

    currency: str
    amount: int


class Figures(msgspec.Struct, kw_only=True):
    """Counts and amounts of one group of cases."""

    failed_invoices: int
    """Invoices whose first failed charge fell in the period."""
    recovered_count: int
    recovered_amount: list[Amount]
    """Recovered amounts by currency (minor units)."""
    recovery_rate: str
    """``recovered_count / failed_invoices`` as a decimal string with four places (``"0.6667"``); ``"0"`` for none."""
    median_seconds_to_recover: int | None
    """Median time from the first failed charge to payment of the recovered ones (merchant clock); ``null`` for none."""
    exhausted_count: int
    open_count: int


class RecoverySummary(Figures, kw_only=True):
    """``GET /api/v1/recovery/summary``: the period's figures, and the same split by decline cause."""

    period_from: datetime
    period_to: datetime
    by_cause: dict[Literal["soft", "hard"], Figures]
    """``soft``: retryable declines (charged again on schedule); ``hard``: final declines (email only)."""
    object: Literal["recovery.summary"] = "recovery.summary"


def _rate(recovered: int, failed: int) -> str:
    if failed == 0:
        return "0"
    return str((Decimal(recovered) / Decimal(failed)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def _median(values: list[int]) -> int | None:
    if not values:
        return None
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2


def figures(cases: list[Case]) -> Figures:
    """The figures of ``cases``."""
    recovered = [case for case in cases if case.status == "recovered"]
    amounts: dict[str, int] = {}
    for case in recovered:
        amounts[case.currency] = amounts.get(case.currency, 0) + (case.recovered_amount or 0)
    durations = [
        int((case.resolved_at - case.failed_at).total_seconds()) for case in recovered if case.resolved_at is not None
    ]
    return Figures(
        failed_invoices=len(cases),
        recovered_count=len(recovered),
        recovered_amount=[Amount(currency=currency, amount=amounts[currency]) for currency in sorted(amounts)],
        recovery_rate=_rate(len(recovered), len(cases)),
        median_seconds_to_recover=_median(durations),
        exhausted_count=sum(case.status == "exhausted" for case in cases),
        open_count=sum(case.status == "open" for case in cases),
    )


def summary(cases: list[Case], start: datetime, end: datetime) -> RecoverySummary:
    """The summary of the cases of ``[start, end)``."""
    overall = figures(cases)
    return RecoverySummary(
        **msgspec.structs.asdict(overall),
        period_from=start,
        period_to=end,
        by_cause={cause: figures([case for case in cases if case.cause == cause]) for cause in ("soft", "hard")},
    )
