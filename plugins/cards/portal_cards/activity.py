"""The cards plugin's events in words for the Overview's *Recent activity*."""

from __future__ import annotations

from portal.sdk import ActivityDescription, ActivityEvent, ActivityFormat, ActivityLine
from portal_cards.events import ADDED, DEFAULT_CHANGED, REMOVED
from portal_cards.views import brand_name


def _card(event: ActivityEvent) -> str:
    brand, last4 = event.data.get("brand"), event.data.get("last4")
    return f"{brand_name(str(brand))} ending {last4}" if brand and last4 else "A card"


def card_added(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Visa ending 4242 added``."""
    return ActivityLine(text=f"{_card(event)} added")


def card_removed(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Visa ending 4242 removed``."""
    return ActivityLine(text=f"{_card(event)} removed")


def default_changed(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine | None:
    """``Default card changed`` when the customer chose or replaced it (the first card's is not news)."""
    if event.data.get("reason") == "first_card" or not event.data.get("id"):
        return None
    return ActivityLine(text="Default card changed")


DESCRIPTIONS = [
    ActivityDescription(event_type=ADDED, describe=card_added),
    ActivityDescription(event_type=REMOVED, describe=card_removed),
    ActivityDescription(event_type=DEFAULT_CHANGED, describe=default_changed),
]
