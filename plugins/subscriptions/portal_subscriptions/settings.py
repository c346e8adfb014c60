"""What a merchant lets customers do with their subscriptions."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from portal.sdk import N_, ProrationBehavior

CancelReason = Literal[
    "too_expensive",
    "missing_features",
    "switched_service",
    "unused",
    "customer_service",
    "too_complex",
    "low_quality",
    "other",
]
"""Stripe's cancellation reasons (``cancellation_details.feedback``)."""

CANCEL_REASONS: tuple[CancelReason, ...] = (
    "too_expensive",
    "missing_features",
    "switched_service",
    "unused",
    "customer_service",
    "too_complex",
    "low_quality",
    "other",
)

DEFAULT_PAUSE_REASONS: tuple[str, ...] = (N_("Too expensive"), N_("Travelling"), N_("Have too much"), N_("Other"))
"""The pause reasons offered unless the merchant lists its own: translated where shown (a merchant's own are not)."""

PauseReason = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Periods = Annotated[int, msgspec.Meta(ge=1, le=12)]
PauseDuration = Periods | Literal["until_date"]
"""A number of billing periods to skip, or ``"until_date"``: the customer picks the day it resumes."""

PriceId = Annotated[str, msgspec.Meta(pattern=r"^price_[0-9a-z]{26}$")]


class SubscriptionsSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[isos.merchants.plugins.subscriptions.settings]``."""

    allow_pause: bool = True
    """Customers may pause a subscription (and resume it)."""
    pause_reasons: Annotated[tuple[PauseReason, ...], msgspec.Meta(min_length=1, max_length=12)] = DEFAULT_PAUSE_REASONS
    """The reasons a customer picks from when pausing (a free-text note may be added)."""
    pause_durations: Annotated[tuple[PauseDuration, ...], msgspec.Meta(min_length=1, max_length=13)] = (
        1,
        2,
        3,
        "until_date",
    )
    """Pause lengths offered: billing periods skipped, and ``"until_date"`` for a day the customer picks."""
    allow_cancel: bool = True
    """Customers may cancel (and undo a cancellation scheduled for the period's end)."""
    cancel_mode: Literal["period_end", "immediately", "both"] = "period_end"
    """When a cancellation takes effect: at the end of the paid period, at once, or the customer's choice."""
    cancel_reasons: Annotated[tuple[CancelReason, ...], msgspec.Meta(min_length=1, max_length=8)] = CANCEL_REASONS
    """Stripe's reasons offered when cancelling (a comment may be added)."""
    allow_plan_change: bool = False
    """Customers may move to another of :attr:`plan_change_prices`."""
    plan_change_prices: Annotated[tuple[PriceId, ...], msgspec.Meta(max_length=20)] = ()
    """The prices customers may move between (a subscription on another price may move to these)."""
    allow_quantity_change: bool = False
    """Customers may change how many they get."""
    quantity_max: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    """The largest quantity a customer may choose."""
    proration_behavior: ProrationBehavior = "always_invoice"
    """How a change is billed: ``always_invoice`` (the difference now), ``create_prorations`` (with the
    next renewal) or ``none`` (the new amount from the next renewal, no difference billed)."""
    downgrades_at_period_end: bool = False
    """A change that lowers the recurring amount is billed from the next renewal, with no credit now."""

    def __post_init__(self) -> None:
        if len(set(self.pause_reasons)) != len(self.pause_reasons):
            raise ValueError("pause_reasons must not repeat a reason")
        if len(set(self.pause_durations)) != len(self.pause_durations):
            raise ValueError("pause_durations must not repeat a duration")
        if len(set(self.cancel_reasons)) != len(self.cancel_reasons):
            raise ValueError("cancel_reasons must not repeat a reason")
        if self.allow_plan_change and not self.plan_change_prices:
            raise ValueError("allow_plan_change needs plan_change_prices")

    @property
    def cancel_modes(self) -> tuple[Literal["period_end", "immediately"], ...]:
        """The cancellation timings offered, period end first."""
        if self.cancel_mode == "both":
            return ("period_end", "immediately")
        return (self.cancel_mode,)
