"""The embedded PostgreSQL stops with its last user: on Ctrl+C, on SIGTERM, and when that user is killed.

Each test runs ``portal demo`` (and sometimes ``portal worker``) as real processes on a fresh data
folder, signals them as a terminal, a service manager or ``kill -9`` would, and then looks for the
folder's PostgreSQL server in the process table. Whatever a failing test leaves running is
stopped in its ``finally``.
"""

from __future__ import annotations

import signal
from pathlib import Path

from reliability.demo_process import (
    Demo,
    PortalProcess,
    clean_env,
    describe_server,
    portal,
    server_running,
    stop_leftovers,
    wait_until_stopped,
)

ATTACHED = "embedded PostgreSQL running in"
"""What a ``portal`` process logs once it uses the embedded server."""


def test_killing_the_demo_stops_its_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    demo = Demo(data_dir, tmp_path / "demo.log")
    try:
        assert server_running(data_dir)
        demo.signal_group(signal.SIGKILL)  # no clean-up code runs in the demo
        assert demo.wait() == -signal.SIGKILL
        assert wait_until_stopped(data_dir), "the server outlived the killed demo: " + describe_server(data_dir)

        # The demo's record is left behind; a command from the same folder notices its process is gone.
        link = portal(
            "links", "create", "--merchant", "greenfield", "--email", "jane@globalco.com", "--data-dir", str(data_dir),
            cwd=tmp_path,
        )  # fmt: skip
        assert link.returncode == 1, link.stdout + link.stderr
        assert "no longer running" in link.stderr and f"--data-dir {data_dir}" in link.stderr
        assert "/access/" not in link.stdout and "Traceback" not in link.stderr
        assert not server_running(data_dir), "refusing the command started no server"
    finally:
        demo.kill()
        stop_leftovers(data_dir)


def test_ctrl_c_stops_the_server_although_another_user_was_killed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    demo = Demo(data_dir, tmp_path / "demo.log")
    worker = PortalProcess(["worker"], tmp_path / "worker.log", env=clean_env(PORTAL_DATA_DIR=str(data_dir)))
    try:
        worker.wait_for_output(ATTACHED)
        worker.signal_group(signal.SIGKILL)  # a second user of the server dies without cleaning up
        assert worker.wait() == -signal.SIGKILL
        assert server_running(data_dir), "the demo still uses the server"

        demo.signal_group(signal.SIGINT)  # Ctrl+C in the demo's terminal
        assert demo.wait() == 0, demo.output()
        assert wait_until_stopped(data_dir), "the server outlived the demo's Ctrl+C: " + describe_server(data_dir)
        assert not (data_dir / "demo.json").exists(), "a clean stop removes the demo's record"
    finally:
        worker.kill()
        demo.kill()
        stop_leftovers(data_dir)


def test_sigterm_stops_the_server_with_its_last_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    demo = Demo(data_dir, tmp_path / "demo.log")
    worker = PortalProcess(["worker"], tmp_path / "worker.log", env=clean_env(PORTAL_DATA_DIR=str(data_dir)))
    try:
        worker.wait_for_output(ATTACHED)

        demo.process.send_signal(signal.SIGTERM)  # as `kill PID` or a service manager stops it
        assert demo.wait() == 0, demo.output()
        assert not (data_dir / "demo.json").exists(), "a clean stop removes the demo's record"
        assert server_running(data_dir), "the worker still uses the server"
        assert worker.process.poll() is None, worker.output()

        worker.process.send_signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.output()
        assert wait_until_stopped(data_dir), "the server outlived its last user: " + describe_server(data_dir)
    finally:
        worker.kill()
        demo.kill()
        stop_leftovers(data_dir)
