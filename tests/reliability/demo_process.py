"""``portal demo`` and other ``portal`` commands as processes of their own, on an embedded PostgreSQL.

Nothing here imports the portal: the processes are started as a user starts them, and the
embedded server is observed from the outside (its ``postmaster.pid`` and the process table).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from support.cli import clean_env  # without PORTAL_* settings the embedded database is used

ROOT = Path(__file__).parents[2]
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def portal(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``portal ARGS`` in ``cwd`` and capture what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class PortalProcess:
    """A long-running ``portal`` command in its own session (so its process group can be signalled)."""

    def __init__(self, args: list[str], log: Path, *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "portal.cli", *args],
                cwd=cwd,
                env=env if env is not None else clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = START_TIMEOUT) -> None:
        if not wait_for(lambda: text in self.output() or self.process.poll() is not None, timeout):
            raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output()}")
        if text not in self.output():
            raise AssertionError(f"exited ({self.process.returncode}) before {text!r}:\n{self.output()}")

    def signal_group(self, sig: int) -> None:
        os.killpg(self.pid, sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        """End the whole process group (if it still runs) and reap the process."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(10)


class Demo(PortalProcess):
    """``portal demo --port PORT --data-dir DATA_DIR``, started and waited for until it serves."""

    def __init__(self, data_dir: Path, log: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        super().__init__(["demo", "--port", str(self.port), "--data-dir", str(data_dir)], log)
        if not wait_for(lambda: self._serves() or self.process.poll() is not None, START_TIMEOUT, 0.5):
            self.kill()
            raise AssertionError(f"the demo did not serve within {START_TIMEOUT} s:\n{self.output()}")
        if self.process.poll() is not None:
            raise AssertionError(f"the demo exited ({self.process.returncode}):\n{self.output()}")

    def _serves(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/-/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, url: str) -> httpx.Response:
        """GET ``url`` (``http://<host>:<port>/path``) from this demo, whatever ``<host>`` resolves to."""
        parsed = httpx.URL(url)
        assert parsed.port == self.port, url
        return httpx.get(
            f"http://127.0.0.1:{self.port}{parsed.raw_path.decode()}",
            headers={"Host": f"{parsed.host}:{parsed.port}"},
            follow_redirects=False,
            timeout=10,
        )


# --- the embedded server, seen from outside --------------------------------------------------


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid in ``<data_dir>/pgdata/postmaster.pid``, if the file is there."""
    try:
        first = (data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.strip().isdigit() else None


def server_processes(data_dir: Path) -> list[psutil.Process]:
    """Running PostgreSQL servers (postmasters) of ``<data_dir>/pgdata``."""
    pgdata = str((data_dir / "pgdata").resolve())
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if process.info["name"] == "postgres" and pgdata in cmdline:
            found.append(process)
    return found


def server_running(data_dir: Path) -> bool:
    pid = postmaster_pid(data_dir)
    return bool(server_processes(data_dir)) or (pid is not None and psutil.pid_exists(pid))


def wait_until_stopped(data_dir: Path, timeout: float = STOP_TIMEOUT) -> bool:
    return wait_for(lambda: not server_running(data_dir), timeout, 0.25)


def describe_server(data_dir: Path) -> str:
    processes = [f"{p.pid} {' '.join(p.info['cmdline'] or [])}" for p in server_processes(data_dir)]
    return f"postmaster.pid: {postmaster_pid(data_dir)}; servers: {processes}"


def stop_leftovers(data_dir: Path) -> None:
    """Stop whatever a failed test left running on ``data_dir``: its server and helper processes."""
    resolved = str(data_dir.resolve())
    pid = postmaster_pid(data_dir)
    servers = {p.pid: p for p in server_processes(data_dir)}
    if pid is not None and pid not in servers and psutil.pid_exists(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            servers[pid] = psutil.Process(pid)
    helpers = [
        p
        for p in psutil.process_iter(["cmdline", "pid"])
        if p.pid != os.getpid()
        and p.pid not in servers
        and any(resolved in part for part in (p.info["cmdline"] or []))
        and "portal" in " ".join(p.info["cmdline"] or [])
    ]
    for process in helpers:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    for process in servers.values():
        try:
            process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(list(servers.values()), timeout=15)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
