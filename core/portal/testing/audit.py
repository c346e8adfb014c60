"""The audit records of a merchant, as tests read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portal.db.engine import fetch, json_value, tenant_transaction


@dataclass(frozen=True)
class AuditRecord:
    """One audit record of a merchant: what happened (``action``), by whom, to what, with which data."""

    id: str
    seq: int
    action: str
    actor: tuple[str, str | None]
    """``(type, id)``: ``("customer", "cus_…")``, ``("merchant_api_key", "key_…")``, ``("system", None)``."""
    target: tuple[str | None, str | None]
    customer_id: str | None
    payload: dict[str, Any]
    occurred_at: datetime


async def audit_records(iso_id: str, merchant_id: str, action: str | None = None) -> list[AuditRecord]:
    """A merchant's audit records (of the event type ``action``), oldest first."""
    async with tenant_transaction(iso_id):
        rows = await fetch(
            "SELECT id, seq, type, actor_type, actor_id, target_type, target_id, customer_id, data, occurred_at "
            "FROM portal_audit_event WHERE merchant_id = $1 AND ($2::text IS NULL OR type = $2) ORDER BY seq",
            merchant_id,
            action,
        )
    return [
        AuditRecord(
            id=row["id"],
            seq=row["seq"],
            action=row["type"],
            actor=(row["actor_type"], row["actor_id"]),
            target=(row["target_type"], row["target_id"]),
            customer_id=row["customer_id"],
            payload=dict(json_value(row["data"]) or {}),
            occurred_at=row["occurred_at"],
        )
        for row in rows
    ]
