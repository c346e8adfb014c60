"""Products and prices: create, list, archive (prices never change amount; archive and add another)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

import msgspec

from portal.billing.calendar import INTERVALS, Interval
from portal.billing.errors import BillingError, NotFoundError
from portal.billing.models import Price, Product
from portal.billing.money import check_currency
from portal.billing.rows import page, require_transaction
from portal.db.engine import fetch, transaction_state
from portal.events.bus import Actor
from portal.ids import new_id
from portal.tenancy.models import Tenant

PRODUCT_COLUMNS = "id, merchant_id AS merchant, name, description, active, created_at"
PRICE_COLUMNS = (
    "id, merchant_id AS merchant, product_id AS product, currency, unit_amount, interval, interval_count, "
    "active, nickname, created_at"
)
MAX_AMOUNT = 99_999_999_999
"""The largest unit amount accepted (in minor units)."""
Known = TypeVar("Known", Price, Product)


def _product(row: dict[str, object]) -> Product:
    return msgspec.convert(row, Product)


def _price(row: dict[str, object]) -> Price:
    return msgspec.convert(row, Price)


async def create_product(tenant: Tenant, *, name: str, description: str = "", actor: Actor) -> Product:
    """A new active product."""
    require_transaction(tenant)
    if not name.strip():
        raise BillingError("invalid_name", "a product needs a name")
    rows = await fetch(
        f"INSERT INTO portal_billing_product (id, iso_id, merchant_id, name, description, created_at) "
        f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {PRODUCT_COLUMNS}",
        new_id("prod"), tenant.merchant.iso_id, tenant.merchant.id, name.strip(), description, datetime.now(UTC),
    )  # fmt: skip
    return _product(rows[0])


async def get_product(tenant: Tenant, product_id: str, *, lock: bool = False) -> Product:
    """One of the merchant's products (:class:`NotFoundError` for any other id); read once per transaction.

    ``lock`` reads it again ``FOR UPDATE``.
    """
    return await _read_once(Product, "portal_billing_product", PRODUCT_COLUMNS, tenant, product_id, lock=lock)


async def list_products(
    tenant: Tenant, *, active: bool | None = None, limit: int = 10, starting_after: str | None = None
) -> list[Product]:
    """The merchant's products, newest first."""
    require_transaction(tenant)
    rows = await page(
        "portal_billing_product", PRODUCT_COLUMNS, tenant.merchant.id, {"active": active},
        limit=limit, starting_after=starting_after,
    )  # fmt: skip
    return [_product(row) for row in rows]


async def archive_product(tenant: Tenant, product_id: str, *, actor: Actor) -> Product:
    """Make a product inactive: no new prices or subscriptions; existing subscriptions go on."""
    await get_product(tenant, product_id, lock=True)
    rows = await fetch(
        f"UPDATE portal_billing_product SET active = false WHERE merchant_id = $1 AND id = $2 "
        f"RETURNING {PRODUCT_COLUMNS}",
        tenant.merchant.id,
        product_id,
    )
    _seen(Product).pop((tenant.merchant.id, product_id), None)
    return _product(rows[0])


async def create_price(
    tenant: Tenant,
    *,
    product_id: str,
    currency: str,
    unit_amount: int,
    interval: Interval,
    interval_count: int = 1,
    nickname: str | None = None,
    actor: Actor,
) -> Price:
    """A new recurring price of an active product; ``unit_amount`` in minor units of ``currency``."""
    product = await get_product(tenant, product_id)
    if not product.active:
        raise BillingError("inactive_product", f"product {product_id} is archived")
    check_currency(currency)
    if isinstance(unit_amount, bool) or not isinstance(unit_amount, int) or not 0 <= unit_amount <= MAX_AMOUNT:
        raise BillingError("invalid_amount", "unit_amount is a whole number of minor units, 0 or more")
    if interval not in INTERVALS:
        raise BillingError("invalid_interval", f"interval is one of {', '.join(INTERVALS)}")
    days = interval_count * {"day": 1, "week": 7, "month": 31, "year": 366}[interval]
    if interval_count < 1 or days > 3 * 366:
        raise BillingError("invalid_interval", "interval_count is at least 1 and the interval at most 3 years")
    rows = await fetch(
        f"INSERT INTO portal_billing_price (id, iso_id, merchant_id, product_id, currency, unit_amount, interval, "
        f"interval_count, nickname, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        f"RETURNING {PRICE_COLUMNS}",
        new_id("price"), tenant.merchant.iso_id, tenant.merchant.id, product_id, currency, unit_amount, interval,
        interval_count, nickname, datetime.now(UTC),
    )  # fmt: skip
    return _price(rows[0])


async def get_price(tenant: Tenant, price_id: str) -> Price:
    """One of the merchant's prices (:class:`NotFoundError` for any other id); read once per transaction."""
    return await _read_once(Price, "portal_billing_price", PRICE_COLUMNS, tenant, price_id)


async def _read_once(
    kind: type[Known], table: str, columns: str, tenant: Tenant, object_id: str, *, lock: bool = False
) -> Known:
    """The merchant's price or product ``object_id``, read from ``table`` once per transaction (again to lock it)."""
    require_transaction(tenant)
    seen = _seen(kind)
    key = (tenant.merchant.id, object_id)
    if lock or key not in seen:
        rows = await fetch(
            f"SELECT {columns} FROM {table} WHERE merchant_id = $1 AND id = $2" + (" FOR UPDATE" if lock else ""),
            tenant.merchant.id,
            object_id,
        )
        if not rows:
            raise NotFoundError(kind.__name__.lower(), object_id)
        seen[key] = msgspec.convert(rows[0], kind)
    return seen[key]


def _seen(kind: type[Known]) -> dict[tuple[str, str], Known]:
    """The prices (or products) this transaction read, by (merchant, id); archiving one forgets it."""
    seen: dict[tuple[str, str], Known] = transaction_state().setdefault(f"portal.billing.{kind.__name__}", {})
    return seen


async def list_prices(
    tenant: Tenant,
    *,
    product_id: str | None = None,
    active: bool | None = None,
    limit: int = 10,
    starting_after: str | None = None,
) -> list[Price]:
    """The merchant's prices, newest first."""
    require_transaction(tenant)
    rows = await page(
        "portal_billing_price", PRICE_COLUMNS, tenant.merchant.id, {"product_id": product_id, "active": active},
        limit=limit, starting_after=starting_after,
    )  # fmt: skip
    return [_price(row) for row in rows]


async def archive_price(tenant: Tenant, price_id: str, *, actor: Actor) -> Price:
    """Make a price inactive: no new subscriptions to it; existing ones go on renewing."""
    await get_price(tenant, price_id)
    rows = await fetch(
        f"UPDATE portal_billing_price SET active = false WHERE merchant_id = $1 AND id = $2 RETURNING {PRICE_COLUMNS}",
        tenant.merchant.id,
        price_id,
    )
    _seen(Price).pop((tenant.merchant.id, price_id), None)
    return _price(rows[0])
