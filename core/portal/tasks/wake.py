"""Waking workers: the after-commit kick and the ``portal.process_due_work`` broker task.

The work itself is durable in PostgreSQL (webhook deliveries, handler runs, tasks); a wake-up
only makes a worker look for it now rather than at its next poll, so a lost one delays work and
loses nothing. Whatever queues work (``emit``, webhook replays, ``queue_task``) runs
:func:`kick_worker` after its transaction commits; that sends ``portal.process_due_work`` through
the broker without making the caller wait. The process that receives it wakes the worker running
there, which registered itself with :func:`set_waker`.

This module imports nothing else of the portal, so the events and tasks packages can both use it
without importing each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from taskiq import async_shared_broker

log = logging.getLogger(__name__)

_waker: Callable[[], None] | None = None
"""What wakes this process's worker (its ``wake`` method), while one runs."""
_KICKS: set[asyncio.Task[None]] = set()


def set_waker(waker: Callable[[], None]) -> None:
    """Make ``waker`` what a ``portal.process_due_work`` message received in this process calls."""
    global _waker
    _waker = waker


def clear_waker(waker: Callable[[], None]) -> None:
    """Forget ``waker`` (a stopping worker), unless another has replaced it since."""
    global _waker
    if _waker == waker:
        _waker = None


def wake_here() -> bool:
    """Wake this process's worker, if one runs here; return whether one does."""
    if _waker is None:
        return False
    _waker()
    return True


@async_shared_broker.task(task_name="portal.process_due_work")
async def process_due_work() -> bool:
    """Wake this process's worker (it then claims whatever is due); return whether one runs here."""
    return wake_here()


async def kick_worker() -> None:
    """Ask a worker to process due work now, without making the caller wait for the broker.

    A lost kick only delays delivery: workers also poll for due work.
    """
    task = asyncio.get_running_loop().create_task(_send_kick())
    _KICKS.add(task)
    task.add_done_callback(_KICKS.discard)


async def _send_kick() -> None:
    try:
        await process_due_work.kiq()
    except Exception:
        log.warning("could not kick the worker; polling will deliver", exc_info=True)
