"""Worker processes side by side for the worker benchmarks: started together, each reports what it did.

A benchmark calls :func:`run_workers` with its own script and arguments; the script, started
with ``--worker-of DSN``, runs one worker's loop in its own process from the agreed start time
(:func:`wait_for_start`) and ends with :func:`report`. The rate counts from the first worker's start
to the last worker's end.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
from harness import BASE_DOMAIN, no_worker_kick

from portal.config import Settings
from portal.platform import Platform

START_DELAY = 10.0
"""Seconds between spawning the workers and their common start: enough to import and connect."""
REPORT = "worker-report: "


class WorkerReport(msgspec.Struct):
    """What one worker process did: how many items, from when to when (wall clock), its CPU time."""

    done: int
    began: float
    ended: float
    cpu: float


@dataclass(frozen=True)
class Run:
    """The workers' reports and the elapsed time from the common start to the last end."""

    reports: list[WorkerReport]
    elapsed: float

    @property
    def done(self) -> int:
        """Items done by all workers together."""
        return sum(report.done for report in self.reports)


async def run_workers(script: str, count: int, dsn: str, extra: list[str]) -> Run:
    """Start ``count`` processes of ``script --worker-of DSN --start-at T *extra`` and wait for their reports."""
    start_at = time.time() + START_DELAY
    argv = [script, "--worker-of", dsn, "--start-at", f"{start_at:.6f}", *extra]
    spawn = [asyncio.create_subprocess_exec(sys.executable, *argv, stdout=subprocess.PIPE) for _ in range(count)]
    processes = [await process for process in spawn]
    reports = []
    for process in processes:
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"a worker process failed with exit code {process.returncode}")
        line = next(line for line in out.decode().splitlines() if line.startswith(REPORT))
        reports.append(msgspec.json.decode(line[len(REPORT) :], type=WorkerReport))
    began = min(report.began for report in reports)
    return Run(reports, max(report.ended for report in reports) - began)


@asynccontextmanager
async def worker_platform(dsn: str, **settings: Any) -> AsyncIterator[Platform]:
    """A started platform on the benchmark's database (made by the parent), worker kick stubbed out."""
    platform = Platform(Settings(database_url=dsn, base_domain=BASE_DOMAIN, **settings))
    await platform.start()
    try:
        with no_worker_kick():
            yield platform
    finally:
        await platform.stop()


async def wait_for_start(start_at: float) -> tuple[float, float]:
    """Sleep until the common start; the wall-clock and CPU times it began at."""
    await asyncio.sleep(max(0.0, start_at - time.time()))
    return time.time(), time.process_time()


def report(done: int, began: tuple[float, float]) -> None:
    """Print this worker's report for the parent."""
    line = msgspec.json.encode(WorkerReport(done, began[0], time.time(), time.process_time() - began[1]))
    sys.stdout.write(REPORT + line.decode() + "\n")
    sys.stdout.flush()
