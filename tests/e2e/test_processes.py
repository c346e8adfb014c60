"""``portal serve`` and ``portal worker`` as the separate processes production runs."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from portal.platform import Platform

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(platform: Platform) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_DATABASE_URL"] = str(platform.settings.database_url)
    env["PORTAL_PUBLIC_SCHEME"] = "http"
    return env


def test_serve_with_two_workers_answers_and_stops_cleanly(shared_tenants: Platform) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=_env(shared_tenants),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/-/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.3)
        else:
            raise AssertionError("portal serve did not answer within 60 s")
        assert health.json() == {"status": "ok"}
        page = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "t-pinnacle.portal.localhost"}, timeout=5)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        login = httpx.get(f"http://127.0.0.1:{port}/login", headers={"Host": "t-pinnacle.portal.localhost"}, timeout=5)
        assert login.status_code == 200 and "Sign in to Pinnacle SaaS Inc." in login.text
        unknown = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "nope.portal.localhost"}, timeout=5)
        assert unknown.status_code == 404
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_worker_stops_gracefully_on_sigterm(shared_tenants: Platform) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "worker"],
        cwd=ROOT,
        env=_env(shared_tenants),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = wait_for_line(process, "worker ready", timeout=60)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    output = seen + output
    assert process.returncode == 0, output
    assert "worker stopping" in output and "Traceback" not in output


def wait_for_line(process: subprocess.Popen[str], text: str, *, timeout: float) -> str:
    """Everything ``process`` printed until a line containing ``text``; fails if it exits or times out."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, ""):
            lines.put(line)
            if text in line:
                return
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise AssertionError(f"no {text!r} within {timeout} s:\n{''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"the process ended before {text!r}:\n{''.join(seen)}")
        seen.append(line)
        if text in line:
            return "".join(seen)
