"""Run taskiq workers in this process: the receiver plus the periodic system sweeps."""

from __future__ import annotations

import asyncio
import logging

from taskiq.api import run_receiver_task

from portal.events.delivery import delivery_poller
from portal.platform import Platform
from portal.tasks.system import SWEEPS

log = logging.getLogger(__name__)


async def run_worker(platform: Platform, sweep_interval: float = 300.0) -> None:
    """Receive and run tasks until cancelled, kicking the system sweeps every ``sweep_interval``."""
    broker = platform.broker
    if broker is None:
        raise RuntimeError("start the platform before running a worker")
    was_worker = broker.is_worker_process
    broker.is_worker_process = True
    receiver = asyncio.gather(
        run_receiver_task(broker, run_startup=False, max_async_tasks=50),
        delivery_poller(platform),  # retries come due and kicks can be lost: poll Postgres
    )
    try:
        while True:
            for sweep in SWEEPS:
                try:
                    await sweep.kiq()
                except Exception:
                    log.exception("could not kick %s", sweep.task_name)
            await asyncio.sleep(sweep_interval)
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
        broker.is_worker_process = was_worker
