"""A plugin standing in for subscriptions and payment recovery: the cards plugin's hooks, answered per customer."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from portal.plugin import hookimpl
from portal.tenancy.models import CustomerView, MerchantView, Tenant

SUBSCRIBED: dict[str, str] = {}
"""Customer id to the name of their active subscription."""
FAILED: dict[str, str] = {}
"""Customer id to the failed charge the update page names."""
AFTER_UPDATE: dict[str, str] = {}
"""Customer id to the page a card update sends them to; ``REPLACED`` records each call."""
REPLACED: list[tuple[str, str, str | None]] = []
"""``(customer id, card id, link id)`` of every update the hook was told about."""


async def _reason(customer_id: str) -> str | None:
    name = SUBSCRIBED.get(customer_id)
    return f"Your {name} subscription" if name else None


async def _failed(customer_id: str) -> str | None:
    return FAILED.get(customer_id)


async def _replaced(customer_id: str, card_id: str, link_id: str | None) -> str | None:
    REPLACED.append((customer_id, card_id, link_id))
    return AFTER_UPDATE.get(customer_id)


@hookimpl
def portal_cards_card_required(merchant: MerchantView, customer_id: str) -> Awaitable[str | None]:
    return _reason(customer_id)


@hookimpl
def portal_cards_update_reason(merchant: MerchantView, customer_id: str) -> Awaitable[str | None]:
    return _failed(customer_id)


@hookimpl
def portal_cards_card_replaced(
    request: Any, tenant: Tenant, customer: CustomerView, card_id: str, link_id: str | None
) -> Awaitable[str | None]:
    return _replaced(customer.id, card_id, link_id)
