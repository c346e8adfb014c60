"""A plugin standing in for subscriptions: it says which customers must keep a card on file."""

from __future__ import annotations

from collections.abc import Awaitable

from portal.plugin import hookimpl
from portal.tenancy.models import MerchantView

SUBSCRIBED: dict[str, str] = {}
"""Customer id to the name of their active subscription."""


async def _reason(customer_id: str) -> str | None:
    name = SUBSCRIBED.get(customer_id)
    return f"Your {name} subscription" if name else None


@hookimpl
def portal_cards_card_required(merchant: MerchantView, customer_id: str) -> Awaitable[str | None]:
    return _reason(customer_id)
