"""Each ISO's disclosure policy: may its merchants see the names of a customer's other merchants?"""

from __future__ import annotations

from portal.sdk import fetch


async def discloses_names(iso_id: str) -> bool:
    """The ISO's choice; off until the ISO turns it on. Call inside its tenant transaction."""
    rows = await fetch("SELECT disclose_merchant_names FROM merchant_switch_iso_policy WHERE iso_id = $1", iso_id)
    return bool(rows and rows[0]["disclose_merchant_names"])


async def set_discloses_names(iso_id: str, value: bool) -> None:
    """Record the ISO's choice. Call inside its tenant transaction."""
    await fetch(
        "INSERT INTO merchant_switch_iso_policy (iso_id, disclose_merchant_names) VALUES ($1, $2) "
        "ON CONFLICT (iso_id) DO UPDATE SET disclose_merchant_names = EXCLUDED.disclose_merchant_names, "
        "updated_at = now()",
        iso_id,
        value,
    )
