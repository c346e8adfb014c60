"""A customer's siblings: their records at other merchants of the same ISO, found by normalised email.

Both merchants must be active with the merchant switch on. The query names the ISO and runs in
its tenant transaction, where row-level security hides every other ISO's rows, so it cannot
reach another ISO whatever it is asked (``portal_customer_iso_email`` serves it).
"""

from __future__ import annotations

import msgspec

from portal.sdk import fetch
from portal_merchant_switch.settings import KEY

SIBLINGS = """
SELECT c.id AS customer_id, m.id AS merchant_id, m.name
  FROM portal_customer c
  JOIN portal_merchant m ON m.id = c.merchant_id AND m.iso_id = c.iso_id AND m.status = 'active'
  JOIN portal_plugin_activation a ON a.merchant_id = m.id AND a.plugin_key = $3 AND a.enabled
 WHERE c.iso_id = $1 AND c.email_normalized = $2
 ORDER BY m.name, m.id
"""


class Sibling(msgspec.Struct, frozen=True, kw_only=True):
    """One of the customer's records: the merchant and the customer there."""

    merchant_id: str
    customer_id: str
    name: str


async def accounts(iso_id: str, email_normalized: str) -> list[Sibling]:
    """Every record with this email at a merchant of ``iso_id`` where switching is on (the current one too).

    Call inside ``tenant_transaction(iso_id)``: one query, constant in the number of merchants.
    """
    rows = await fetch(SIBLINGS, iso_id, email_normalized, KEY)
    return [Sibling(merchant_id=r["merchant_id"], customer_id=r["customer_id"], name=r["name"]) for r in rows]


def others(found: list[Sibling], merchant_id: str) -> list[Sibling]:
    """The siblings of the customer at ``merchant_id``: the records at other merchants."""
    if not any(s.merchant_id == merchant_id for s in found):
        return []  # switching is off here (or the record moved): nothing to offer
    return [s for s in found if s.merchant_id != merchant_id]


async def counts(iso_id: str, merchant_id: str, emails: list[str]) -> dict[str, int]:
    """Normalised email to how many other merchants with switching on have a record with it (one query)."""
    rows = await fetch(
        """
        SELECT c.email_normalized AS email, count(DISTINCT c.merchant_id) AS n
          FROM portal_customer c
          JOIN portal_merchant m ON m.id = c.merchant_id AND m.iso_id = c.iso_id AND m.status = 'active'
          JOIN portal_plugin_activation a ON a.merchant_id = m.id AND a.plugin_key = $3 AND a.enabled
         WHERE c.iso_id = $1 AND c.email_normalized = ANY($2::text[]) AND c.merchant_id <> $4
         GROUP BY c.email_normalized
        """,
        iso_id,
        emails,
        KEY,
        merchant_id,
    )
    return dict.fromkeys(emails, 0) | {row["email"]: int(row["n"]) for row in rows}
