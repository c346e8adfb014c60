"""What a merchant sets for payment recovery: emails, reminders, the retry schedule, the final action."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

KEY = "payment_recovery"

Day = Annotated[int, msgspec.Meta(ge=1, le=60)]


class RecoverySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[isos.merchants.plugins.payment_recovery.settings]``; days count from the first failed charge."""

    emails: bool = True
    """Email the customer an update-your-card link after a failed charge, and the reminders."""
    reminder_days: Annotated[tuple[Day, ...], msgspec.Meta(max_length=10)] = (3, 6)
    """Days on which a reminder (with a fresh link) goes out while the invoice is unpaid."""
    retry_days: Annotated[tuple[Day, ...], msgspec.Meta(min_length=1, max_length=10)] = (3, 6, 10, 14)
    """Days on which a soft decline is charged again (default: 4 tries over 14 days). The last day
    also ends a hard decline's recovery, which is never charged again on a schedule."""
    final_action: Literal["unpaid", "canceled"] = "unpaid"
    """What becomes of the subscription when recovery ends unpaid."""

    def __post_init__(self) -> None:
        for name, days in (("reminder_days", self.reminder_days), ("retry_days", self.retry_days)):
            if list(days) != sorted(set(days)):
                raise ValueError(f"{name} must be increasing days without repeats")


def settings_of(plugin_settings: dict[str, object]) -> RecoverySettings:
    """The merchant's recovery settings from a tenant's plugin settings (the defaults when unset)."""
    found = plugin_settings.get(KEY)
    return found if isinstance(found, RecoverySettings) else RecoverySettings()
