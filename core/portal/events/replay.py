"""Replaying webhooks: a stored message queued again as a new delivery (new ``msg_`` id, attempts from zero).

Only messages to enabled endpoints are replayed; the copies are sent by
:mod:`portal.events.delivery` like any other, and a worker is kicked after commit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from portal.db.engine import after_commit, fetch, tenant_transaction
from portal.ids import new_id
from portal.tasks.wake import kick_worker

if TYPE_CHECKING:
    from portal.platform import Platform

log = logging.getLogger(__name__)


class ReplayError(LookupError):
    """The delivery to replay does not exist for this merchant, or its endpoint is disabled."""


async def replay(platform: Platform, iso_id: str, merchant_id: str, delivery_id: str) -> str:
    """Queue a copy of ``delivery_id`` as a new pending message (new ``msg_`` id); return its id."""
    new = new_id("msg")
    async with tenant_transaction(iso_id):
        rows = await fetch(
            """
            INSERT INTO portal_webhook_delivery (id, iso_id, merchant_id, endpoint_id, event_id, event_type, payload)
            SELECT $1, d.iso_id, d.merchant_id, d.endpoint_id, d.event_id, d.event_type, d.payload
              FROM portal_webhook_delivery d JOIN portal_webhook_endpoint e ON e.id = d.endpoint_id
             WHERE d.id = $2 AND d.merchant_id = $3 AND e.enabled
            RETURNING id
            """,
            new,
            delivery_id,
            merchant_id,
        )
        if not rows:
            raise ReplayError(f"no delivery {delivery_id} to an enabled endpoint of merchant {merchant_id}")
        after_commit(kick_worker)
    log.info("webhook %s replayed as %s", delivery_id, new)
    return new


async def replay_since(
    platform: Platform, iso_id: str, merchant_id: str, since: datetime, endpoint_id: str | None = None
) -> list[str]:
    """Queue a copy of every message created since ``since`` (one per endpoint and event); return the new ids."""
    async with tenant_transaction(iso_id):
        sources = await fetch(
            """
            SELECT DISTINCT ON (d.endpoint_id, d.event_id) d.id
              FROM portal_webhook_delivery d JOIN portal_webhook_endpoint e ON e.id = d.endpoint_id
             WHERE d.merchant_id = $1 AND d.created_at >= $2 AND e.enabled
               AND ($3::text IS NULL OR d.endpoint_id = $3)
             ORDER BY d.endpoint_id, d.event_id, d.created_at
            """,
            merchant_id,
            since,
            endpoint_id,
        )
        ids = [row["id"] for row in sources]
        new_ids = [new_id("msg") for _ in ids]
        if ids:
            await fetch(
                """
                INSERT INTO portal_webhook_delivery
                    (id, iso_id, merchant_id, endpoint_id, event_id, event_type, payload)
                SELECT n.new_id, d.iso_id, d.merchant_id, d.endpoint_id, d.event_id, d.event_type, d.payload
                  FROM unnest($1::text[], $2::text[]) AS n(old_id, new_id)
                  JOIN portal_webhook_delivery d ON d.id = n.old_id
                """,
                ids,
                new_ids,
            )
            after_commit(kick_worker)
    log.info("replayed %s webhook messages of merchant %s", len(ids), merchant_id)
    return new_ids
