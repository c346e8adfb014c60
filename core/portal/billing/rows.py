"""Shared by the ledger's modules: the transaction check, row-to-Struct mapping and cursor lists."""

from __future__ import annotations

from typing import Any

from portal.db.engine import TenantScopeError, current_iso, fetch
from portal.tenancy.models import Tenant

MAX_LIMIT = 100


def require_transaction(tenant: Tenant) -> None:
    """Raise unless the caller's ``tenant_transaction`` for the merchant's ISO is open."""
    if current_iso() != tenant.merchant.iso_id:
        raise TenantScopeError("billing functions run inside the merchant's tenant_transaction")


async def page(
    table: str,
    columns: str,
    merchant_id: str,
    filters: dict[str, Any],
    *,
    limit: int,
    starting_after: str | None,
) -> list[dict[str, Any]]:
    """Rows of one merchant, newest first (ids are time-ordered), after the cursor ``starting_after``.

    ``filters`` maps column names (trusted, from code) to values; ``None`` values are skipped.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    conditions = ["merchant_id = $1"]
    args: list[Any] = [merchant_id]
    for column, value in filters.items():
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    if starting_after is not None:
        args.append(starting_after)
        conditions.append(f"id < ${len(args)}")
    args.append(limit)
    sql = f"SELECT {columns} FROM {table} WHERE {' AND '.join(conditions)} ORDER BY id DESC LIMIT ${len(args)}"
    return await fetch(sql, *args)
