"""The signed-in customer's recent events at this merchant, in words, in one query.

Only audit records whose ``customer_id`` is the customer's and whose merchant is the host's are
read (row-level security confines them to the ISO as well), newest first, and only of event types
core or an enabled plugin describes. Events naming a subscription or an invoice get their
product's name and the invoice's total in the same query.
"""

from __future__ import annotations

import logging
from datetime import datetime

import msgspec

from portal.activity.formats import ActivityFormat
from portal.db.engine import fetch, json_value
from portal.plugin import ActivityDescription, ActivityEvent
from portal.tenancy.models import Tenant

log = logging.getLogger(__name__)

FEED_LINES = 6
"""Lines the Overview shows."""
SCANNED = 30
"""Events read to fill them (describers leave some out, such as a renewal's own invoice)."""

QUERY = """
SELECT e.id, e.type, e.data, e.before, e.after, e.occurred_at, e.actor_type,
       plan.product, plan.nickname, bill.invoice_total, bill.invoice_currency, bill.invoice_number
  FROM (SELECT id, seq, type, data, before, after, occurred_at, actor_type,
               data -> 'subscription' ->> 'id' AS subscription_id,
               CASE WHEN jsonb_typeof(data -> 'invoice') = 'string' THEN data ->> 'invoice' END AS invoice_id
          FROM portal_audit_event
         WHERE merchant_id = $1 AND customer_id = $2 AND type = ANY($3::text[])
         ORDER BY seq DESC
         LIMIT $4) e
  LEFT JOIN LATERAL (
        SELECT product.name AS product, price.nickname
          FROM portal_billing_subscription sub
          JOIN portal_billing_price price ON price.id = sub.price_id
          JOIN portal_billing_product product ON product.id = price.product_id
         WHERE sub.id = e.subscription_id AND sub.merchant_id = $1
         LIMIT 1) plan ON true
  LEFT JOIN LATERAL (
        SELECT invoice.total AS invoice_total, invoice.currency AS invoice_currency, invoice.number AS invoice_number
          FROM portal_billing_invoice invoice
         WHERE invoice.id = e.invoice_id AND invoice.merchant_id = $1
         LIMIT 1) bill ON true
 ORDER BY e.seq DESC
"""


class ActivityItem(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the feed, ready for the template."""

    id: str
    text: str
    amount: str | None
    when: str
    datetime: str | None
    """The day ``when`` names (ISO 8601) for ``<time datetime>``; ``None`` when ``when`` is words."""


def _related(row: dict[str, object]) -> dict[str, object]:
    names = ("product", "nickname", "invoice_total", "invoice_currency", "invoice_number")
    return {name: row[name] for name in names if row[name] is not None}


def describe_rows(
    rows: list[dict[str, object]], described: dict[str, ActivityDescription], fmt: ActivityFormat
) -> list[ActivityItem]:
    """The rows' lines, newest first, at most :data:`FEED_LINES`; a describer that fails is skipped."""
    items: list[ActivityItem] = []
    for row in rows:
        description = described.get(str(row["type"]))
        if description is None:
            continue
        occurred = row["occurred_at"]
        assert isinstance(occurred, datetime)
        event = ActivityEvent(
            id=str(row["id"]),
            type=str(row["type"]),
            data=json_value(row["data"]) or {},
            before=json_value(row["before"]) if row["before"] is not None else None,
            after=json_value(row["after"]) if row["after"] is not None else None,
            occurred_at=occurred,
            actor_type=str(row["actor_type"]),
            related=_related(row),
        )
        try:
            line = description.describe(event, fmt)
        except Exception:
            log.exception("describing %s %s failed", event.type, event.id)
            continue
        if line is None:
            continue
        at = (line.at or occurred).astimezone(fmt.zone)
        items.append(
            ActivityItem(
                id=event.id,
                text=line.text,
                amount=line.amount,
                when=line.when or fmt.date(at),
                datetime=None if line.when else at.date().isoformat(),
            )
        )
        if len(items) == FEED_LINES:
            break
    return items


async def recent_activity(
    tenant: Tenant, customer_id: str, described: dict[str, ActivityDescription], fmt: ActivityFormat
) -> list[ActivityItem]:
    """The customer's recent activity at the tenant's merchant; runs in the caller's tenant transaction."""
    rows = await fetch(QUERY, tenant.merchant.id, customer_id, list(described), SCANNED)
    return describe_rows(rows, described, fmt)
