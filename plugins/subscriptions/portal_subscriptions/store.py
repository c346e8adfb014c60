"""Reading a customer's subscriptions: one query per page, constant in their number.

The ledger's own functions (``portal.sdk.billing_subscriptions``) read one merchant's rows; these
read one customer's, with the price, the product and any prorations waiting for the next renewal
joined in, so a page never asks again per subscription. Call inside the merchant's tenant transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from portal.sdk import MerchantView, SubscriptionStatus, fetch

MAX_LISTED = 100
"""Subscriptions a list shows (newest live ones first, ended ones after)."""

_SELECT = """
SELECT s.id, s.price_id, s.quantity, s.status, s.current_period_start, s.current_period_end, s.billing_anchor,
       s.cancel_at_period_end, s.canceled_at, s.pause_reason, s.resumes_at, s.trial_end,
       s.default_payment_method, s.created_at,
       p.currency, p.unit_amount, p.interval, p.interval_count, p.nickname, pr.name AS product_name,
       COALESCE(d.pending, 0)::bigint AS pending
  FROM portal_billing_subscription s
  JOIN portal_billing_price p ON p.id = s.price_id AND p.merchant_id = s.merchant_id
  JOIN portal_billing_product pr ON pr.id = p.product_id AND pr.merchant_id = s.merchant_id
  LEFT JOIN LATERAL (
       SELECT sum(i.total) AS pending FROM portal_billing_invoice i
        WHERE i.merchant_id = s.merchant_id AND i.subscription_id = s.id AND i.status = 'draft'
  ) d ON true
 WHERE s.merchant_id = $1 AND s.customer_id = $2
"""


class StoredSubscription(msgspec.Struct, frozen=True, kw_only=True):
    """A subscription with what its pages show of its price and product."""

    id: str
    price_id: str
    quantity: int
    status: SubscriptionStatus
    current_period_start: datetime
    current_period_end: datetime
    billing_anchor: datetime
    cancel_at_period_end: bool
    canceled_at: datetime | None
    pause_reason: str | None
    resumes_at: datetime | None
    trial_end: datetime | None
    default_payment_method: str | None
    created_at: datetime
    currency: str
    unit_amount: int
    interval: str
    interval_count: int
    nickname: str | None
    product_name: str
    pending: int
    """Prorations on the subscription's draft, billed with the next renewal."""

    @property
    def amount(self) -> int:
        """What one period costs (minor units)."""
        return self.unit_amount * self.quantity


class PlanOption(msgspec.Struct, frozen=True, kw_only=True):
    """A price a customer may move to."""

    id: str
    currency: str
    unit_amount: int
    interval: str
    interval_count: int
    nickname: str | None
    product_name: str


def _row(row: dict[str, Any]) -> StoredSubscription:
    return msgspec.convert(row, StoredSubscription)


async def subscriptions_of(merchant: MerchantView, customer_id: str) -> list[StoredSubscription]:
    """The customer's subscriptions at the merchant: live ones first, newest first."""
    rows = await fetch(
        _SELECT + " ORDER BY s.status = 'canceled', s.id DESC LIMIT $3", merchant.id, customer_id, MAX_LISTED
    )
    return [_row(row) for row in rows]


async def subscription_of(merchant: MerchantView, customer_id: str, subscription_id: str) -> StoredSubscription | None:
    """One of the customer's subscriptions at the merchant; ``None`` for any other id."""
    rows = await fetch(_SELECT + " AND s.id = $3", merchant.id, customer_id, subscription_id)
    return _row(rows[0]) if rows else None


async def plan_options(merchant: MerchantView, price_ids: list[str], currency: str) -> list[PlanOption]:
    """The merchant's active prices among ``price_ids`` in ``currency``, in the order given."""
    rows = await fetch(
        "SELECT p.id, p.currency, p.unit_amount, p.interval, p.interval_count, p.nickname, pr.name AS product_name "
        "FROM portal_billing_price p JOIN portal_billing_product pr ON pr.id = p.product_id "
        "WHERE p.merchant_id = $1 AND p.id = ANY($2::text[]) AND p.active AND p.currency = $3",
        merchant.id,
        price_ids,
        currency,
    )
    found = {row["id"]: msgspec.convert(row, PlanOption) for row in rows}
    return [found[price_id] for price_id in price_ids if price_id in found]


async def card_required_reason(merchant: MerchantView, customer_id: str) -> str | None:
    """The reason to keep a card ("Your Monthly Bread Box subscription") while a subscription has not ended."""
    rows = await fetch(
        "SELECT pr.name FROM portal_billing_subscription s "
        "JOIN portal_billing_price p ON p.id = s.price_id JOIN portal_billing_product pr ON pr.id = p.product_id "
        "WHERE s.merchant_id = $1 AND s.customer_id = $2 AND s.status <> 'canceled' "
        "ORDER BY s.id DESC LIMIT 1",
        merchant.id,
        customer_id,
    )
    return f"Your {rows[0]['name']} subscription" if rows else None


async def live_count(merchant: MerchantView, customer_id: str) -> int:
    """How many of the customer's subscriptions have not ended."""
    rows = await fetch(
        "SELECT count(*) AS n FROM portal_billing_subscription WHERE merchant_id = $1 AND customer_id = $2 "
        "AND status <> 'canceled'",
        merchant.id,
        customer_id,
    )
    return int(rows[0]["n"])
