"""The worker's event task: deliver due webhooks and run due handlers, ISO by ISO."""

from __future__ import annotations

import logging

from taskiq import async_shared_broker

from portal.db.engine import fetch, system_transaction
from portal.events.delivery import deliver_due
from portal.events.handlers import run_due_handlers
from portal.tasks.runtime import current_platform

log = logging.getLogger(__name__)


async def isos_with_due_work() -> list[str]:
    """ISO ids with deliveries or handler runs due (ids only, through the narrow lookup)."""
    async with system_transaction():
        rows = await fetch("SELECT portal_isos_with_due_work() AS id")
    return [row["id"] for row in rows]


@async_shared_broker.task(task_name="portal.process_due_work")
async def process_due_work() -> int:
    """Process everything due now; return how many deliveries and handler runs were done."""
    platform = current_platform()
    done = 0
    for iso_id in await isos_with_due_work():
        done += await deliver_due(platform, iso_id)
        done += await run_due_handlers(platform.registry, iso_id)
    return done
