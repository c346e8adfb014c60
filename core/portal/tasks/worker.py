"""Run taskiq workers in this process: the receiver plus the periodic system sweeps."""

from __future__ import annotations

import asyncio
import importlib
import logging

from taskiq import AsyncBroker
from taskiq.api import run_receiver_task

from portal.platform import Platform
from portal.tasks import runtime
from portal.tasks.broker import create_broker
from portal.tasks.system import SWEEPS

log = logging.getLogger(__name__)

CORE_TASK_MODULES = ["portal.tasks.system"]


def import_task_modules(platform: Platform) -> None:
    """Import core and plugin task modules so their tasks are registered."""
    for module in [*CORE_TASK_MODULES, *platform.registry.task_modules]:
        importlib.import_module(module)


async def start_broker(platform: Platform) -> AsyncBroker:
    """Create the configured broker for a started platform and start it (for kicking tasks)."""
    runtime.set_platform(platform)
    import_task_modules(platform)
    broker = create_broker(platform.settings, await platform.database.app_dsn())
    await broker.startup()
    return broker


async def run_worker(platform: Platform, broker: AsyncBroker, sweep_interval: float = 300.0) -> None:
    """Receive and run tasks until cancelled, kicking the system sweeps every ``sweep_interval``."""
    broker.is_worker_process = True
    receiver = asyncio.create_task(run_receiver_task(broker, run_startup=False, max_async_tasks=50))
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
