"""Switch records: written by the switch at the source, completed once by the landing at the target."""

from __future__ import annotations

from typing import Any

from portal.sdk import fetch, new_id
from portal_merchant_switch.settings import KEY


async def record(
    iso_id: str, *, from_merchant: str, from_customer: str, to_merchant: str, to_customer: str, link_id: str
) -> str:
    """Store a switch about to happen; its id."""
    switch_id = new_id("msw")
    await fetch(
        "INSERT INTO merchant_switch_record (id, iso_id, from_merchant_id, from_customer_id, to_merchant_id, "
        "to_customer_id, link_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        switch_id,
        iso_id,
        from_merchant,
        from_customer,
        to_merchant,
        to_customer,
        link_id,
    )
    return switch_id


async def land(merchant_id: str, customer_id: str, link_id: str) -> dict[str, Any] | None:
    """Complete the switch a link was minted for, if its source is still a sibling; its id and source name.

    ``None`` when no switch was minted for this link, customer and merchant, when it already
    landed, or when the source record no longer shares the email or the source merchant is no
    longer active with switching on.
    """
    rows = await fetch(
        """
        UPDATE merchant_switch_record r SET landed_at = now()
          FROM portal_customer src, portal_customer dst, portal_merchant m, portal_plugin_activation a
         WHERE r.to_merchant_id = $1 AND r.to_customer_id = $2 AND r.link_id = $3 AND r.landed_at IS NULL
           AND src.id = r.from_customer_id AND src.merchant_id = r.from_merchant_id
           AND dst.id = r.to_customer_id AND dst.merchant_id = r.to_merchant_id
           AND src.email_normalized = dst.email_normalized
           AND m.id = r.from_merchant_id AND m.status = 'active'
           AND a.merchant_id = m.id AND a.plugin_key = $4 AND a.enabled
        RETURNING r.id, m.name AS from_merchant_name
        """,
        merchant_id,
        customer_id,
        link_id,
        KEY,
    )
    return rows[0] if rows else None
