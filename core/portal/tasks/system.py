"""System jobs that span ISOs.

Each lists ISO ids through ``portal_iso_ids()`` and then works inside one ISO at a time, so
row-level security stays on throughout.
"""

from __future__ import annotations

import logging

from taskiq import async_shared_broker

from portal.db.engine import fetch, system_transaction, tenant_transaction

log = logging.getLogger(__name__)


async def iso_ids(*, include_suspended: bool = False) -> list[str]:
    """ISO ids (the narrow cross-ISO path for system jobs); active ones unless asked otherwise."""
    async with system_transaction():
        rows = await fetch("SELECT portal_iso_ids($1) AS id", include_suspended)
    return [row["id"] for row in rows]


@async_shared_broker.task(task_name="portal.purge_sessions")
async def purge_sessions() -> int:
    """Delete sessions that ended or expired more than a day ago, and other spent rows.

    Also removes expired rate-limit counters and links that expired more than 30 days ago.
    Returns how many sessions were removed.
    """
    removed = 0
    for iso_id in await iso_ids(include_suspended=True):
        async with tenant_transaction(iso_id):
            rows = await fetch(
                """
                DELETE FROM portal_session
                 WHERE coalesce(ended_at, expires_at) < now() - interval '1 day'
                RETURNING id
                """
            )
            await fetch("DELETE FROM portal_rate_counter WHERE expires_at < now()")
            await fetch("DELETE FROM portal_link WHERE expires_at < now() - interval '30 days'")
        removed += len(rows)
    if removed:
        log.info("purged %s sessions", removed)
    return removed


SWEEPS = [purge_sessions]
