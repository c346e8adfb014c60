"""The worker: finds due work in PostgreSQL, wakes early on broker messages, stops gracefully.

Four lanes run side by side, each on its own: webhook deliveries, plugin event handlers,
durable tasks, and scheduled jobs. Each lane looks for due work every ``task_poll_interval``
seconds and at once when a broker message (or a listener that hears again) wakes it, so a lost
message, a deaf listener or a dead worker only delays work. The broker's receiver is restarted
with backoff when it fails.

:meth:`Worker.stop` (SIGTERM): the receiver stops, lanes take nothing new, what runs may finish
within the grace period, and everything this worker still holds is handed back at once
(:func:`portal.tasks.durable.release_claims`), then other workers are woken to take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from taskiq.receiver import Receiver

from portal.db.engine import database_unavailable, fetch, system_transaction
from portal.events.delivery import BATCH, deliver_due
from portal.events.handlers import run_due_handlers
from portal.metrics import OLDEST_DUE_TASK_AGE, TASKS_DUE, WORKER_UP
from portal.platform import Platform
from portal.tasks.durable import CLAIM_BATCH, release_claims, run_due_tasks
from portal.tasks.pg_broker import PostgresWakeBroker
from portal.tasks.schedules import all_jobs, ensure_schedules, release_schedules, run_due_schedules
from portal.tasks.wake import clear_waker, process_due_work, set_waker

log = logging.getLogger(__name__)

FIRST_DELAY = 0.5
MAX_DELAY = 30.0
STEADY_AFTER = 5.0
"""Seconds a restarted receiver must run before the broker counts as reachable again."""
CHECK_TIMEOUT = 2.0


class Worker:
    """One worker of the platform; :meth:`run` until :meth:`stop`."""

    def __init__(self, platform: Platform, *, poll_interval: float | None = None, grace: float | None = None) -> None:
        settings = platform.settings
        self.platform = platform
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.poll_interval = poll_interval if poll_interval is not None else settings.task_poll_interval
        self.grace = grace if grace is not None else settings.worker_grace_seconds
        """Seconds :meth:`stop` lets running work finish before handing it back."""
        self.stopping = asyncio.Event()
        self.touched: set[str] = set()
        """ISOs in which this worker claimed work (where :meth:`stop` hands claims back)."""
        self._wakes: list[asyncio.Event] = []
        self._lanes: list[asyncio.Task[None]] = []
        self._receiver: asyncio.Task[None] | None = None
        self._receiver_error: str | None = "not started"
        self._receiver_since = 0.0
        self._database_error: str | None = None
        self._last_stats: dict[str, Any] | None = None
        """Due work by kind and the oldest due age, as :meth:`refresh_metrics` last read them."""

    # --- running ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Make every lane look for due work now."""
        for event in self._wakes:
            event.set()

    async def run(self) -> None:
        """Work until :meth:`stop` (or cancellation, which stops gracefully too)."""
        broker = self.platform.broker
        if broker is None:
            raise RuntimeError("start the platform before running a worker")
        set_waker(self.wake)  # what a ``portal.process_due_work`` message received here wakes
        if isinstance(broker, PostgresWakeBroker):
            broker.on_listening = self.wake
        lease = timedelta(seconds=self.platform.settings.task_lease_seconds)
        self._lanes = [
            self._lane("webhook", self._deliver, BATCH),
            self._lane("handler", self._handle, 50),
            self._lane("task", self._run_tasks, CLAIM_BATCH),
            asyncio.create_task(self._schedules(lease), name="worker-schedules"),
        ]
        self._receiver = asyncio.create_task(self._receive(), name="worker-receiver")
        try:
            await self.stopping.wait()
        finally:
            await self._shut_down()

    def _lane(self, kind: str, process: Callable[[str], Awaitable[int]], batch: int) -> asyncio.Task[None]:
        wake = asyncio.Event()
        self._wakes.append(wake)
        return asyncio.create_task(self._lane_loop(kind, process, batch, wake), name=f"worker-{kind}")

    async def _lane_loop(
        self, kind: str, process: Callable[[str], Awaitable[int]], batch: int, wake: asyncio.Event
    ) -> None:
        while not self.stopping.is_set():
            wake.clear()
            busy = False
            try:
                for iso_id in await self._isos_with_due(kind):
                    if self.stopping.is_set():
                        break
                    self.touched.add(iso_id)
                    if await process(iso_id) >= batch:
                        busy = True
                self._database_ok()
            except Exception as exc:
                self._lane_failed(kind, exc)
            if not busy:
                await self._pause(wake)

    async def _isos_with_due(self, kind: str) -> list[str]:
        async with system_transaction():
            rows = await fetch("SELECT portal_isos_with_due_work($1) AS id", kind)
        return [row["id"] for row in rows]

    async def _deliver(self, iso_id: str) -> int:
        return await deliver_due(self.platform, iso_id, worker_id=self.id, stopping=self.stopping)

    async def _handle(self, iso_id: str) -> int:
        return await run_due_handlers(self.platform.registry, iso_id, worker_id=self.id, stopping=self.stopping)

    async def _run_tasks(self, iso_id: str) -> int:
        return await run_due_tasks(self.platform, iso_id, self.id)

    async def _schedules(self, lease: timedelta) -> None:
        wake = asyncio.Event()
        self._wakes.append(wake)
        ensured = False
        while not self.stopping.is_set():
            wake.clear()
            try:
                if not ensured:
                    await ensure_schedules(sorted(all_jobs(self.platform)))
                    ensured = True
                await run_due_schedules(self.platform, self.id, lease)
                self._database_ok()
            except Exception as exc:
                self._lane_failed("schedule", exc)
            await self._pause(wake)

    async def _pause(self, wake: asyncio.Event) -> None:
        """Wait for a wake-up, the poll interval or the stop, whichever comes first."""
        waits = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self.stopping.wait())]
        try:
            await asyncio.wait(waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _database_ok(self) -> None:
        if self._database_error is not None:
            log.info("worker %s: the database answers again", self.id)
            self._database_error = None

    def _lane_failed(self, kind: str, exc: Exception) -> None:
        if database_unavailable(exc):
            if self._database_error is None:
                log.warning("worker %s: the database is unavailable (%s); retrying every poll", self.id, exc)
            self._database_error = f"{type(exc).__name__}: {exc}"
        else:
            log.exception("worker %s: processing %s work failed", self.id, kind)

    # --- the broker ------------------------------------------------------------------------

    async def _receive(self) -> None:
        """Run taskiq's receiver; when it fails, reconnect the broker with backoff and run it again."""
        broker = self.platform.broker
        assert broker is not None
        broker.is_worker_process = True
        delay = FIRST_DELAY
        with ThreadPoolExecutor(max_workers=1) as executor:
            while not self.stopping.is_set():
                self._receiver_since = time.monotonic()
                if self._receiver_error == "not started":
                    self._receiver_error = None
                try:
                    receiver = Receiver(broker, executor=executor, run_startup=False, max_async_tasks=50)
                    await receiver.listen(asyncio.Event())
                    raise ConnectionError("the broker stopped delivering messages")
                except Exception as exc:
                    if time.monotonic() - self._receiver_since > STEADY_AFTER:
                        delay = FIRST_DELAY  # it ran a while: a fresh failure, not a failing restart
                    self._receiver_error = f"{type(exc).__name__}: {exc}"
                    log.warning("worker %s: the broker receiver failed (%s); reconnecting in %g s",
                                self.id, self._receiver_error, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
                try:
                    await broker.shutdown()
                    await broker.startup()
                except Exception as exc:
                    self._receiver_error = f"{type(exc).__name__}: {exc}"
                    continue
                log.info("worker %s: the broker receiver is running again", self.id)

    def broker_problem(self) -> str | None:
        """Why this worker cannot hear its broker now (``None`` when it can)."""
        broker = self.platform.broker
        if isinstance(broker, PostgresWakeBroker) and not broker.connected:
            return f"not listening for wake-ups ({broker.last_error or 'reconnecting'})"
        if self._receiver_error is not None and time.monotonic() - self._receiver_since < STEADY_AFTER:
            return self._receiver_error
        if self._receiver is None or self._receiver.done():
            return "the receiver is not running"
        return None

    # --- health ----------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """Liveness and what this worker sees: database, broker, the oldest due work (refreshes metrics)."""
        problems = await self.problems()
        stats = self._last_stats
        return {
            "status": "ok" if not problems else "degraded",
            "worker": self.id,
            "stopping": self.stopping.is_set(),
            "problems": problems,
            "oldest_due_task_age_seconds": None if stats is None else stats["oldest_age"],
            "due": None if stats is None else stats["due"],
        }

    async def problems(self) -> list[str]:
        """What keeps this worker from working now (empty when it works): database, broker, stopping."""
        found: list[str] = []
        try:
            await self.refresh_metrics()
            WORKER_UP.labels(component="database").set(1)
        except Exception as exc:
            WORKER_UP.labels(component="database").set(0)
            found.append(f"database: {type(exc).__name__}: {exc}")
        broker = self.broker_problem()
        WORKER_UP.labels(component="broker").set(0 if broker else 1)
        if broker:
            found.append(f"broker: {broker}")
        if self.stopping.is_set():
            found.append("stopping")
        return found

    async def refresh_metrics(self) -> None:
        """Read due work by kind and the oldest due time from PostgreSQL into the queue gauges."""
        async with asyncio.timeout(CHECK_TIMEOUT), system_transaction():
            rows = await fetch(
                "SELECT kind, due, extract(epoch FROM now() - oldest_due_at)::float8 AS age "
                "FROM portal_due_work_stats()"
            )
        due = {row["kind"]: int(row["due"]) for row in rows}
        ages = [float(row["age"]) for row in rows if row["age"] is not None]
        for kind, count in due.items():
            TASKS_DUE.labels(kind=kind).set(count)
        oldest = max(ages, default=0.0)
        OLDEST_DUE_TASK_AGE.set(oldest)
        self._last_stats = {"due": due, "oldest_age": round(oldest, 3)}

    # --- stopping --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to stop gracefully (what SIGTERM does)."""
        self.stopping.set()

    async def _shut_down(self) -> None:
        self.stopping.set()
        grace = self.grace
        if self._receiver is not None:
            self._receiver.cancel()
        _, unfinished = await asyncio.wait(self._lanes, timeout=grace) if self._lanes else (set(), set())
        for lane in unfinished:
            lane.cancel()
        await asyncio.gather(*self._lanes, *([self._receiver] if self._receiver else []), return_exceptions=True)
        if unfinished:
            log.warning("worker %s: %s lanes still busy after %g s; handing their work back", self.id,
                        len(unfinished), grace)  # fmt: skip
        try:
            released = await release_claims(self.touched, self.id)
            await release_schedules(self.id)
            if released:
                await _wake_others(self.platform)
        except Exception:
            log.exception("worker %s: could not hand back its claims; their leases will", self.id)
        clear_waker(self.wake)


async def _wake_others(platform: Platform) -> None:
    """Tell the other workers there is work to take (best effort; they poll anyway)."""
    broker = platform.broker
    if broker is None:
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CHECK_TIMEOUT):
            await process_due_work.kicker().with_broker(broker).kiq()


async def run_worker(platform: Platform, poll_interval: float | None = None) -> None:
    """Run a :class:`Worker` until cancelled; cancellation stops it gracefully."""
    worker = Worker(platform, poll_interval=poll_interval)
    runner = asyncio.create_task(worker.run())
    try:
        await asyncio.shield(runner)
    except asyncio.CancelledError:
        worker.stop()
        await runner
        raise
