"""What a merchant lets customers do with their cards."""

from __future__ import annotations

from typing import Annotated

import msgspec


class CardsSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[isos.merchants.plugins.cards.settings]``."""

    allow_add: bool = True
    """Customers may add cards (and update a card after a failed charge)."""
    allow_remove: bool = True
    """Customers may remove cards."""
    max_cards: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5
    """Cards a customer may keep on file at once."""
    expiring_soon_days: Annotated[int, msgspec.Meta(ge=0, le=366)] = 45
    """A card whose expiry month ends within this many days is flagged as expiring soon."""
