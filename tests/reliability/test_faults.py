"""Background work survives faults: sign-in emails and webhooks arrive through restarts and kills.

Real processes, all of this test's own: a PostgreSQL server (restartable), a Redis server (the
broker of the first test), ``portal serve``, two ``portal worker`` processes, a real SMTP server
(``MailCatcher``, in this process) and a webhook receiver that verifies every signature
(``support.receiver``), registered as an endpoint through the API. Timings are short: a poll
every 0.5 s, a webhook timeout of 2 s (so a claim of a batch of webhooks holds 15 s) and a task
lease of 15 s too. The lease must outlast the PostgreSQL outage (about 4 s) plus the worker's
backoff in recording an outcome (:data:`portal.tasks.durable.RECORD_DELAYS`): an email sent just
before the server stops is recorded once it is back, and only a lease that ran out first would
let another worker send it again.

``test_restarts_and_a_kill_lose_nothing`` requests sign-in emails and API writes before, during
and after a PostgreSQL restart, around a SIGKILL of a busy worker and through a Redis restart:

- during the restart every answer is a success or a 503 with ``Retry-After``, never a 500;
- every acknowledged sign-in request's email arrives exactly once (counted by recipient), except
  where the kill may have fallen between sending and recording (see :class:`KillSnapshot`);
- every acknowledged write's ``customer.created`` webhook arrives at least once, signed, and its
  copies share one ``webhook-id`` and one body (deduplicable);
- each within the bound stated at the phase (``*_BOUND`` below).

``test_sigterm_hands_busy_work_over_at_once`` stops a worker holding slow deliveries with SIGTERM:
it exits 0 within its grace period and the other worker delivers what it held well before the
claim's lease (55 s there) would have run out.

Afterwards the queue holds no stale rows: every task and delivery succeeded and none is claimed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from reliability.demo_process import free_port

from portal.mail import MailCatcher
from support.cli import clean_env
from support.cli import portal as run_portal
from support.postgres import OwnPostgres, create_database
from support.receiver import Receiver, Reply, Request

ROOT = Path(__file__).parents[2]
SLUG = "t-faults-shop"
BASE_DOMAIN = "portal.localhost"
API_HOST = f"api.{BASE_DOMAIN}"
MERCHANT_HOST = f"{SLUG}.{BASE_DOMAIN}"
RETRY_AFTER = "3"
CUSTOMERS = 150
"""Customers the tenants file creates; each sign-in request goes to one not used before."""
ANSWER_BOUND = 15.0
"""Seconds within which every HTTP answer must come, database down or not."""
HEAL_BOUND = 30.0
"""Seconds, after PostgreSQL is back, within which everything requested so far has arrived."""
REDIS_DOWN_BOUND = 10.0
"""Seconds within which work requested while Redis is down arrives (the poll finds it)."""
RECONNECT_BOUND = 20.0
"""Seconds, after Redis is back, within which every worker's broker receiver runs again."""
LEASE = 15.0
"""Seconds a claim holds in the first test, tasks and webhooks alike (see the module's docstring)."""
HANDOVER_BOUND = 10.0
"""Seconds after SIGTERM within which the other worker has delivered all the stopped worker held."""


def tenants_file() -> str:
    customers = "".join(
        f'\n[[isos.merchants.customers]]\nemail = "{customer(i)}"\nname = "Customer {i}"\n' for i in range(CUSTOMERS)
    )
    return f"""
[[isos]]
slug = "t-faults"
name = "Faults ISO"

[[isos.merchants]]
slug = "{SLUG}"
name = "Faults shop"
{customers}"""


def customer(i: int) -> str:
    return f"c{i:03d}@faults.test"


# --- processes --------------------------------------------------------------------------------


class OwnRedis:
    """``redis-server`` on a free loopback port, nothing persisted; stopped and started on the same port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        with (self.folder / "redis.log").open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", str(self.folder),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            assert self.process.returncode is None, (self.folder / "redis.log").read_text()
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            assert time.monotonic() < deadline, "redis-server did not listen"
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


class PortalProcess:
    """A long-running ``portal`` command; its output goes to a file."""

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, env: dict[str, str], *args: str) -> None:
        with self.log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "portal.cli", *args, cwd=ROOT, env=env, stdout=out, stderr=out
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def wait_for_output(self, pattern: str, seconds: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + seconds
        while True:
            found = re.search(pattern, self.output())
            if found:
                return found
            assert self.process is not None and self.process.returncode is None, f"{self.name} exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {pattern!r} from {self.name} in {seconds:g} s:\n{self.output()}"
            await asyncio.sleep(0.1)

    async def stop(self, sig: int = signal.SIGTERM, seconds: float = 30) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), seconds)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


class WorkerProcess(PortalProcess):
    id: str = ""
    ops: str | None = None
    """``http://host:port`` of its operator listener, when it has one."""

    async def begin(self, env: dict[str, str], *, ops: bool = False) -> None:
        await self.start(env, "worker", *(["--ops-port", "0"] if ops else []))
        self.id = (await self.wait_for_output(r"worker ready \((\S+)\)")).group(1)
        if ops:
            found = re.search(r"worker operator listener on (http://\S+?)/-/health", self.output())
            assert found, self.output()
            self.ops = found.group(1)


# --- the stack ----------------------------------------------------------------------------


@dataclass
class Stack:
    folder: Path
    postgres: OwnPostgres
    catcher: MailCatcher
    receiver: Receiver
    redis: OwnRedis | None = None
    env: dict[str, str] = field(default_factory=dict)
    web: PortalProcess | None = None
    web_port: int = 0
    api_key: str = ""
    csrf: tuple[str, str] = ("", "")
    """The CSRF cookie and the token that goes with it (from ``GET /login``)."""
    workers: list[WorkerProcess] = field(default_factory=list)
    next_customer: int = 0
    next_write: int = 0
    emails: set[str] = field(default_factory=set)
    """Recipients of acknowledged sign-in requests (one request each)."""
    unacknowledged_emails: set[str] = field(default_factory=set)
    writes: dict[str, str] = field(default_factory=dict)
    """Acknowledged writes: customer id -> email."""
    answers: list[tuple[str, int, str | None, float]] = field(default_factory=list)
    """Every answer to the requests above: what, status, ``Retry-After``, seconds."""

    def client(self, host: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.web_port}",
            headers={"host": f"{host}:{self.web_port}"},
            trust_env=False,
            timeout=ANSWER_BOUND + 10,
        )

    def output(self) -> str:
        logs = [self.web, *self.workers]
        return "\n".join(f"--- {p.name}\n{p.output()[-6000:]}" for p in logs if p is not None)

    async def start_worker(self, *, ops: bool = False, **env: str) -> WorkerProcess:
        worker = WorkerProcess(f"worker-{len(self.workers)}", self.folder / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        await worker.begin({**self.env, **env}, ops=ops)
        return worker

    # --- requests ---

    async def request_login(self) -> int:
        email = customer(self.next_customer)
        self.next_customer += 1
        cookie, token = self.csrf
        started = time.monotonic()
        async with self.client(MERCHANT_HOST) as client:
            response = await client.post(
                "/login", data={"csrf_token": token, "email": email}, headers={"cookie": cookie}
            )
        self._answered("login", response, started)
        if response.status_code == 200:
            assert "Check your email" in response.text, response.text
            self.emails.add(email)
        else:
            self.unacknowledged_emails.add(email)
        return response.status_code

    async def write(self) -> int:
        email = f"w{self.next_write:04d}@faults.test"
        self.next_write += 1
        started = time.monotonic()
        async with self.client(API_HOST) as client:
            response = await client.post(
                "/api/v1/customers",
                json={"email": email, "name": "Written under faults"},
                headers={"authorization": f"Bearer {self.api_key}"},
            )
        self._answered("write", response, started)
        if response.status_code == 201:
            self.writes[response.json()["id"]] = email
        return response.status_code

    def _answered(self, what: str, response: httpx.Response, started: float) -> None:
        seconds = time.monotonic() - started
        self.answers.append((what, response.status_code, response.headers.get("retry-after"), seconds))
        assert response.status_code != 500, (what, response.text, self.output())
        assert response.status_code in (200, 201, 503), (what, response.status_code, response.text)
        if response.status_code == 503:
            assert response.headers.get("retry-after") == RETRY_AFTER, (what, response.headers)
        assert seconds < ANSWER_BOUND, (what, seconds)

    async def burst(self, logins: int, writes: int) -> None:
        """Sign-in requests and writes, a few at a time, every one acknowledged (nothing is down)."""
        for start in range(0, max(logins, writes), 5):
            asks = [self.request_login() for _ in range(min(5, max(0, logins - start)))]
            asks += [self.write() for _ in range(min(5, max(0, writes - start)))]
            statuses = await asyncio.gather(*asks)
            assert set(statuses) <= {200, 201}, statuses

    # --- arrivals ---

    def mail_counts(self) -> collections.Counter[str]:
        return collections.Counter(to for mail in self.catcher.messages for to in mail.envelope_to)

    def webhook_ids(self) -> dict[str, set[str]]:
        """Customer id -> the ``webhook-id`` values of verified ``customer.created`` requests for it."""
        found: dict[str, set[str]] = collections.defaultdict(set)
        for request in self.receiver.requests:
            if request.verified:
                body = json.loads(request.body)
                if body.get("type") == "customer.created":
                    found[body["data"]["object"]["id"]].add(request.msg_id)
        return found

    def missing(self) -> tuple[list[str], list[str]]:
        mails = self.mail_counts()
        hooks = self.webhook_ids()
        return [e for e in self.emails if not mails[e]], [c for c in self.writes if not hooks.get(c)]

    async def all_arrived(self, seconds: float, what: str) -> float:
        """Wait until every acknowledged email and webhook arrived; return how long it took."""
        started = time.monotonic()
        while True:
            emails, writes = self.missing()
            if not emails and not writes:
                return time.monotonic() - started
            if time.monotonic() - started > seconds:
                raise AssertionError(
                    f"{what}: after {seconds:g} s, {len(emails)} emails ({emails[:5]}) and {len(writes)} webhooks "
                    f"({writes[:5]}) had not arrived\n{self.output()}"
                )
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def stack(*, redis: bool, **settings: str) -> AsyncIterator[Stack]:
    """PostgreSQL (and Redis) of its own, migrated, one merchant, ``portal serve`` and an endpoint."""
    folder = Path(tempfile.mkdtemp(prefix="portal-faults-"))
    catcher = MailCatcher(max_messages=1000)
    receiver = Receiver([])
    live = Stack(folder, OwnPostgres(folder), catcher, receiver, OwnRedis(folder) if redis else None)
    try:
        await catcher.start()
        await receiver.start()
        await asyncio.to_thread(live.postgres.start)
        if live.redis is not None:
            await live.redis.start()
        await create_database(live.postgres)
        live.env = clean_env(
            PORTAL_DATABASE_URL=live.postgres.dsn,
            PORTAL_DATA_DIR=str(folder / "data"),
            PORTAL_BASE_DOMAIN=BASE_DOMAIN,
            PORTAL_PUBLIC_SCHEME="http",
            PORTAL_DB_ACQUIRE_TIMEOUT="2",
            PORTAL_DB_STATEMENT_TIMEOUT="4",
            PORTAL_UNAVAILABLE_RETRY_AFTER=RETRY_AFTER,
            PORTAL_LOG_LEVEL="info",
            PORTAL_SMTP_HOST="127.0.0.1",
            PORTAL_SMTP_PORT=str(catcher.port),
            PORTAL_WEBHOOK_ALLOW_PRIVATE="true",
            PORTAL_LOGIN_RATE_PER_IP="100000",
            PORTAL_LOGIN_RATE_PER_EMAIL="1000",
            PORTAL_TASK_POLL_INTERVAL="0.5",
            **({"PORTAL_BROKER_URL": live.redis.url} if live.redis is not None else {}),
            **settings,
        )
        (folder / "tenants.toml").write_text(tenants_file(), encoding="utf-8")
        for args in (("migrate",), ("tenants", "apply", str(folder / "tenants.toml"))):
            done = await asyncio.to_thread(run_portal, live.env, *args)
            assert done.returncode == 0, f"portal {' '.join(args)}: {done.stdout}\n{done.stderr}"
        done = await asyncio.to_thread(run_portal, live.env, "api-keys", "create", "--merchant", SLUG)
        assert done.returncode == 0, done.stderr
        live.api_key = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("key:"))
        live.web_port = free_port()
        live.web = PortalProcess("web", folder / "serve.log")
        await live.web.start(live.env, "serve", "--host", "127.0.0.1", "--port", str(live.web_port))
        async with live.client("localhost") as client:
            deadline = time.monotonic() + 60
            while True:
                assert live.web.process is not None and live.web.process.returncode is None, live.web.output()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/-/ready")).status_code == 200:
                        break
                assert time.monotonic() < deadline, live.web.output()
                await asyncio.sleep(0.2)
        async with live.client(API_HOST) as client:
            created = await client.post(
                "/api/v1/webhook-endpoints",
                json={"url": receiver.url, "event_types": ["customer.created"], "description": "faults"},
                headers={"authorization": f"Bearer {live.api_key}"},
            )
        assert created.status_code == 201, created.text
        receiver.secrets.append(created.json()["secret"])
        async with live.client(MERCHANT_HOST) as client:
            form = await client.get("/login")
        assert form.status_code == 200, form.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None, form.text
        live.csrf = (form.headers["set-cookie"].split(";", 1)[0], token.group(1))
        yield live
    finally:
        for process in [*live.workers, *([live.web] if live.web else [])]:
            if process.process is not None and process.process.returncode is None:
                await process.stop(signal.SIGTERM, 20)
        if live.redis is not None:
            await live.redis.stop()
        try:
            await asyncio.to_thread(live.postgres.stop)
        except Exception:
            live.postgres.kill()
        await receiver.stop()
        await catcher.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- checks -------------------------------------------------------------------------------


async def owner(live: Stack) -> asyncpg.Connection:
    return await asyncpg.connect(live.postgres.dsn)


async def assert_no_stale_rows(live: Stack, settle: float = 20) -> None:
    """Every task and delivery succeeded, none is claimed or due; no schedule is held by a dead worker."""
    alive = {w.id for w in live.workers if w.process is not None and w.process.returncode is None}
    connection = await owner(live)
    try:
        deadline = time.monotonic() + settle
        while True:
            tasks = await connection.fetch(
                "SELECT id, name, status, claimed_by, attempts, next_attempt_at <= now() AS due FROM portal_task"
            )
            hooks = await connection.fetch("SELECT id, status, claimed_by, attempts FROM portal_webhook_delivery")
            settled = all(r["status"] != "pending" for r in [*tasks, *hooks])
            if settled or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        schedules = await connection.fetch("SELECT name, claimed_by FROM portal_schedule")
    finally:
        await connection.close()
    assert tasks and hooks
    assert {r["status"] for r in tasks} == {"succeeded"}, [dict(r) for r in tasks if r["status"] != "succeeded"]
    assert all(r["claimed_by"] is None for r in tasks), [dict(r) for r in tasks if r["claimed_by"]]
    assert {r["status"] for r in hooks} == {"succeeded"}, [dict(r) for r in hooks if r["status"] != "succeeded"]
    assert all(r["claimed_by"] is None for r in hooks), [dict(r) for r in hooks if r["claimed_by"]]
    held = [dict(r) for r in schedules if r["claimed_by"] is not None and r["claimed_by"] not in alive]
    assert not held, f"schedules held by workers that are gone: {held}"


def assert_webhooks_deduplicable(live: Stack) -> None:
    """Every acknowledged write has a verified webhook; copies of one message carry the same body."""
    assert not live.receiver.failures, live.receiver.failures
    bodies: dict[str, set[bytes]] = collections.defaultdict(set)
    for request in live.receiver.requests:
        bodies[request.msg_id].add(request.body)
    assert all(len(b) == 1 for b in bodies.values()), "a webhook-id was sent with different bodies"
    hooks = live.webhook_ids()
    assert all(len(hooks[c]) == 1 for c in live.writes), {c: hooks[c] for c in live.writes if len(hooks[c]) != 1}


async def health(worker: WorkerProcess) -> tuple[dict[str, Any], int]:
    assert worker.ops is not None
    async with httpx.AsyncClient(base_url=worker.ops, trust_env=False, timeout=10) as client:
        found = (await client.get("/-/health")).json()
        ready = (await client.get("/-/ready")).status_code
    return found, ready


async def eventually(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


# --- the tests ----------------------------------------------------------------------------


@dataclass
class KillSnapshot:
    """What a SIGKILL left behind, read once the process is gone.

    A sign-in task the killed worker still held (pending, claimed by it) whose recipient already
    had an email may have been sent with its outcome unrecorded: it is sent again after the lease,
    so that recipient may get two emails (at most two). Every other recipient gets exactly one.
    """

    held_tasks: list[str]
    held_webhooks: list[str]
    maybe_twice: set[str]


async def kill_a_busy_worker(live: Stack) -> tuple[WorkerProcess, KillSnapshot]:
    connection = await owner(live)
    try:

        async def holder() -> str | None:
            rows = await connection.fetch(
                "SELECT claimed_by FROM portal_webhook_delivery WHERE status = 'pending' AND claimed_by IS NOT NULL "
                "UNION ALL SELECT claimed_by FROM portal_task WHERE status = 'pending' AND claimed_by IS NOT NULL"
            )
            return next((r["claimed_by"] for r in rows), None)

        busy = await eventually(holder, 20, "a worker holding claimed work")
        victim = next(w for w in live.workers if w.id == busy)
        assert await victim.stop(signal.SIGKILL, 10) == -signal.SIGKILL
        await asyncio.sleep(0.5)  # whatever the killed worker had fully written reaches the catcher
        held_tasks = await connection.fetch(
            "SELECT args->>'email' AS email FROM portal_task WHERE status = 'pending' AND claimed_by = $1", victim.id
        )
        held_webhooks = await connection.fetch(
            "SELECT id FROM portal_webhook_delivery WHERE status = 'pending' AND claimed_by = $1", victim.id
        )
    finally:
        await connection.close()
    mails = live.mail_counts()
    emails = [r["email"] for r in held_tasks]
    return victim, KillSnapshot(emails, [r["id"] for r in held_webhooks], {e for e in emails if mails[e]})


async def test_restarts_and_a_kill_lose_nothing() -> None:
    began = time.monotonic()
    async with stack(
        redis=True, PORTAL_TASK_LEASE_SECONDS=str(LEASE), PORTAL_WEBHOOK_TIMEOUT="2", PORTAL_WORKER_GRACE_SECONDS="10"
    ) as live:
        watched = await live.start_worker(ops=True)
        await live.start_worker()

        # 1. before, during and after a PostgreSQL restart
        await live.burst(logins=4, writes=4)
        traffic_on = True

        async def traffic() -> None:
            while traffic_on:
                await asyncio.gather(live.request_login(), live.write())
                await asyncio.sleep(0.2)

        running = asyncio.create_task(traffic())
        try:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(live.postgres.stop)
            down = time.monotonic()

            async def database_problem() -> bool:
                found, ready = await health(watched)
                return ready == 503 and any(p.startswith("database:") for p in found["problems"])

            await eventually(database_problem, 10, f"the worker's health to report the database\n{live.output()}")
            await asyncio.sleep(max(0.0, 3 - (time.monotonic() - down)))
            await asyncio.to_thread(live.postgres.start)
            back = time.monotonic()
            await asyncio.sleep(2)
        finally:
            traffic_on = False
            await running
        await live.burst(logins=4, writes=4)
        healed_in = await live.all_arrived(HEAL_BOUND - (time.monotonic() - back), "after the PostgreSQL restart")
        during = [a for a in live.answers if a[1] == 503]
        assert during, "no request met the outage"
        found, ready = await health(watched)
        assert ready == 200 and not found["problems"], found
        assert isinstance(found["oldest_due_task_age_seconds"], float | int), found

        # 2. a worker killed with SIGKILL in the middle of work (the receiver answers slowly)
        answered: dict[str, float] = {}

        async def slow(request: Request) -> Reply:
            await asyncio.sleep(0.5)
            answered[request.msg_id] = time.monotonic()
            return 200, {}, b"ok"

        live.receiver.respond = slow
        asking = asyncio.create_task(live.burst(logins=15, writes=25))
        victim, snapshot = await kill_a_busy_worker(live)
        killed = time.monotonic()
        await live.start_worker()  # two workers again
        await asking
        kill_bound = LEASE + 10
        recovered_in = await live.all_arrived(kill_bound - (time.monotonic() - killed), "after the SIGKILL")
        # what the killed worker held is answered after the kill, by another worker, within the bound
        await live.receiver.wait_for(
            lambda: all(answered.get(m, 0) > killed for m in snapshot.held_webhooks),
            kill_bound - (time.monotonic() - killed),
            lambda: f"the held webhooks {snapshot.held_webhooks} to be delivered again\n{live.output()}",
        )
        redelivered_in = max((answered[m] - killed for m in snapshot.held_webhooks), default=0.0)
        live.receiver.respond = _ok

        # 3. the Redis broker restarted: the poll finds work meanwhile, wake-ups work again after
        assert live.redis is not None
        await live.redis.stop()
        redis_down = time.monotonic()
        await live.burst(logins=4, writes=4)
        await live.all_arrived(REDIS_DOWN_BOUND, "while Redis is down")
        alive = [w for w in live.workers if w is not victim]
        for worker in alive:
            await worker.wait_for_output(r"the broker receiver failed", 10)
        await asyncio.sleep(max(0.0, 2 - (time.monotonic() - redis_down)))
        await live.redis.start()
        for worker in alive:
            await worker.wait_for_output(r"the broker receiver is running again", RECONNECT_BOUND)
        await live.burst(logins=4, writes=4)
        await live.all_arrived(REDIS_DOWN_BOUND, "after Redis came back")
        woken = await _stream_read(live.redis.url)
        assert woken > 0, "no wake-up went through the restarted Redis"

        # exactly once for emails, at least once (deduplicable) for webhooks
        mails = live.mail_counts()
        twice = {e: n for e, n in mails.items() if n > 1}
        assert set(twice) <= snapshot.maybe_twice, (twice, snapshot)
        assert all(n == 2 for n in twice.values()), twice
        assert all(mails[e] == 1 for e in live.emails if e not in snapshot.maybe_twice)
        assert all(mails[e] <= 1 for e in live.unacknowledged_emails), "an unacknowledged request mailed twice"
        assert set(mails) <= set(live.emails) | live.unacknowledged_emails, "a mail no one asked for"
        assert_webhooks_deduplicable(live)

        # 5. no stale rows
        await assert_no_stale_rows(live)
        logs = "\n".join(w.output() for w in live.workers)
        assert "the database is unavailable" in watched.output()
        assert "the database answers again" in watched.output()
        assert live.web is not None and "unhandled error" not in live.web.output()
        errors = [line for line in logs.splitlines() if re.match(r"\S+ \S+ (ERROR|CRITICAL) ", line)]
        assert not errors, logs[logs.find(errors[0]) :][:3000] if errors else ""
        print(
            f"\nemails {len(live.emails)}, writes {len(live.writes)}, 503s {len(during)}; arrived "
            f"{healed_in:.1f} s after the PostgreSQL restart, {recovered_in:.1f} s after the SIGKILL "
            f"(which held {len(snapshot.held_webhooks)} webhooks, delivered again in {redelivered_in:.1f} s, and "
            f"{len(snapshot.held_tasks)} tasks, {len(snapshot.maybe_twice)} of them already mailed); "
            f"total {time.monotonic() - began:.1f} s"
        )


async def _ok(_: Request) -> Reply:
    return 200, {}, b"ok"


async def _stream_read(url: str) -> int:
    """Entries of the Redis stream ``portal_tasks`` read by the workers' group ``portal_workers``."""
    from redis.asyncio import Redis

    async with Redis.from_url(url, decode_responses=True) as redis:
        groups = await redis.xinfo_groups("portal_tasks")
    return sum(int(group.get("entries-read") or 0) for group in groups if group["name"] == "portal_workers")


async def test_sigterm_hands_busy_work_over_at_once() -> None:
    grace = 3.0
    async with stack(
        redis=False,
        PORTAL_TASK_LEASE_SECONDS="60",
        # The held sends must still be waiting when SIGTERM comes, after a second worker process has
        # started (seconds on a loaded machine): a claim of a batch then holds about two minutes.
        PORTAL_WEBHOOK_TIMEOUT="30",
        PORTAL_WORKER_GRACE_SECONDS=str(grace),
    ) as live:
        release = asyncio.Event()
        stopping = asyncio.Event()
        held: list[str] = []
        answered: list[tuple[str, float]] = []

        async def respond(request: Request) -> Reply:
            if not stopping.is_set():
                held.append(request.msg_id)
                await release.wait()  # the busy worker's requests get no answer
            answered.append((request.msg_id, time.monotonic()))
            return 200, {}, b"ok"

        live.receiver.respond = respond
        await live.burst(logins=0, writes=30)  # queued before a worker runs: one claims them all at once
        busy = await live.start_worker()
        try:
            await live.receiver.wait_for(lambda: len(held) >= 16, 20, lambda: f"16 held sends\n{live.output()}")
            connection = await owner(live)
            try:
                claimed = await connection.fetchval(
                    "SELECT count(*) FROM portal_webhook_delivery WHERE status = 'pending' AND claimed_by = $1",
                    busy.id,
                )
            finally:
                await connection.close()
            assert claimed == 30, claimed
            other = await live.start_worker()
            stopping.set()
            sent = time.monotonic()
            code = await busy.stop(signal.SIGTERM, grace + 15)
            exited = time.monotonic() - sent
            await live.burst(logins=3, writes=0)
            handed_over = await live.all_arrived(HANDOVER_BOUND - (time.monotonic() - sent), "after SIGTERM")
        finally:
            release.set()
        assert code == 0, busy.output()
        assert exited < grace + 5, f"took {exited:.1f} s to exit"
        assert "handed back 30 claimed" in busy.output(), busy.output()
        assert "worker stopped" in busy.output()
        assert {m for m, _ in answered} >= set(held)
        assert max(at for _, at in answered) - sent < HANDOVER_BOUND
        assert_webhooks_deduplicable(live)
        mails = live.mail_counts()
        assert all(mails[e] == 1 for e in live.emails), mails
        await assert_no_stale_rows(live)
        assert other.process is not None and other.process.returncode is None
        print(f"\nSIGTERM: exited in {exited:.1f} s (grace {grace:g} s), all delivered {handed_over:.1f} s later")
