"""System jobs that span ISOs.

Each lists ISO ids through ``portal_iso_ids()`` and then works inside one ISO at a time, so
row-level security stays on throughout.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.tasks.durable import purge_finished_tasks
from portal.tasks.schedules import scheduled

if TYPE_CHECKING:
    from portal.platform import Platform

log = logging.getLogger(__name__)


async def iso_ids(*, include_suspended: bool = False) -> list[str]:
    """ISO ids (the narrow cross-ISO path for system jobs); active ones unless asked otherwise."""
    async with system_transaction():
        rows = await fetch("SELECT portal_iso_ids($1) AS id", include_suspended)
    return [row["id"] for row in rows]


@scheduled("portal.purge_sessions", every=timedelta(minutes=5))
async def purge_sessions(platform: Platform | None = None) -> int:
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


@scheduled("portal.purge_finished_tasks", every=timedelta(hours=1))
async def purge_tasks(platform: Platform) -> int:
    """Delete finished tasks and handler runs older than ``task_retention_days``; return how many tasks."""
    older_than = timedelta(days=platform.settings.task_retention_days)
    removed = 0
    for iso_id in await iso_ids(include_suspended=True):
        removed += await purge_finished_tasks(iso_id, older_than)
    if removed:
        log.info("purged %s finished tasks", removed)
    return removed
