"""The cards plugin's events in words for the Overview's *Recent activity*."""

from __future__ import annotations

from portal.sdk import ActivityDescription, ActivityEvent, ActivityFormat, ActivityLine
from portal.sdk import gettext as _
from portal_cards.events import ADDED, DEFAULT_CHANGED, REMOVED
from portal_cards.views import brand_name


def _card(event: ActivityEvent) -> tuple[str, str] | None:
    brand, last4 = event.data.get("brand"), event.data.get("last4")
    return (brand_name(str(brand)), str(last4)) if brand and last4 else None


def card_added(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Visa ending 4242 added``."""
    card = _card(event)
    if card is None:
        return ActivityLine(text=_("A card added"))
    return ActivityLine(text=_("%(brand)s ending %(last4)s added") % {"brand": card[0], "last4": card[1]})


def card_removed(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    """``Visa ending 4242 removed``."""
    card = _card(event)
    if card is None:
        return ActivityLine(text=_("A card removed"))
    return ActivityLine(text=_("%(brand)s ending %(last4)s removed") % {"brand": card[0], "last4": card[1]})


def default_changed(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine | None:
    """``Default card changed`` when the customer chose or replaced it (the first card's is not news)."""
    if event.data.get("reason") == "first_card" or not event.data.get("id"):
        return None
    return ActivityLine(text=_("Default card changed"))


DESCRIPTIONS = [
    ActivityDescription(event_type=ADDED, describe=card_added),
    ActivityDescription(event_type=REMOVED, describe=card_removed),
    ActivityDescription(event_type=DEFAULT_CHANGED, describe=default_changed),
]
