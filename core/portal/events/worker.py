"""The worker's wake-up task: a broker message that makes the worker of its process look for due work."""

from __future__ import annotations

from taskiq import async_shared_broker


@async_shared_broker.task(task_name="portal.process_due_work")
async def process_due_work() -> bool:
    """Wake this process's worker (it then claims whatever is due); return whether one runs here."""
    from portal.tasks.worker import wake_current_worker

    return wake_current_worker()
