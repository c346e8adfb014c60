"""Running plugin event handlers in the worker: each isolated, failures recorded and retried."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from portal.db.engine import fetch, json_value, savepoint, tenant_transaction
from portal.plugin import HandledEvent
from portal.plugins.registry import PluginRegistry

log = logging.getLogger(__name__)

RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
LEASE = timedelta(minutes=2)


async def run_due_handlers(
    registry: PluginRegistry,
    iso_id: str,
    limit: int = 50,
    *,
    worker_id: str | None = None,
    stopping: asyncio.Event | None = None,
) -> int:
    """Run handler rows of one ISO that are due; return how many were claimed.

    ``worker_id`` is recorded on the claims (so a stopping worker can hand them back); once
    ``stopping`` is set, claimed rows not yet started are left for that hand-back.
    """
    async with tenant_transaction(iso_id):
        claimed = await fetch(
            """
            WITH due AS MATERIALIZED (  -- picked once: never more than the limit (see portal.tasks.durable)
                SELECT id FROM portal_event_handling
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            UPDATE portal_event_handling h
               SET attempts = h.attempts + 1, next_attempt_at = now() + $2::interval, claimed_by = $3
              FROM due
             WHERE h.id = due.id
            RETURNING h.id, h.event_id, h.handler, h.attempts
            """,
            limit,
            LEASE,
            worker_id,
        )
    for row in claimed:
        if stopping is not None and stopping.is_set():
            break
        await _run_one(registry, iso_id, row)
    return len(claimed)


async def _run_one(registry: PluginRegistry, iso_id: str, row: dict[str, object]) -> None:
    spec = registry.event_handlers.get(str(row["handler"]))
    try:
        async with tenant_transaction(iso_id):
            if spec is None:
                raise LookupError(f"handler {row['handler']} is not installed")
            events = await fetch(
                "SELECT id, type, iso_id, merchant_id, seq, data, customer_id, target_type, target_id "
                "FROM portal_audit_event WHERE id = $1",
                row["event_id"],
            )
            event = events[0]
            data = json_value(event["data"])
            async with savepoint():
                await spec[1].handle(HandledEvent(**{**event, "data": data}))
            await fetch(
                "UPDATE portal_event_handling SET status = 'succeeded', done_at = now(), last_error = NULL, "
                "claimed_by = NULL WHERE id = $1",
                row["id"],
            )
    except Exception as exc:
        attempts = int(row["attempts"])  # type: ignore[call-overload]
        final = attempts > len(RETRY_DELAYS)
        delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
        log.warning("handler %s failed on event %s (attempt %s): %s", row["handler"], row["event_id"], attempts, exc)
        async with tenant_transaction(iso_id):
            await fetch(
                "UPDATE portal_event_handling SET status = $2, next_attempt_at = $3, last_error = $4, "
                "claimed_by = NULL WHERE id = $1",
                row["id"],
                "failed" if final else "pending",
                None if final else datetime.now(UTC) + delay,
                f"{type(exc).__name__}: {exc}"[:2000],
            )
