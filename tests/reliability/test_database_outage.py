"""A database outage answers 503 with ``Retry-After``, never a 500 and never a hang; then it heals.

Real processes: a PostgreSQL server of this test's own (initialised in a temporary folder,
listening on a free loopback port, so it can be stopped, frozen and started again without
touching the suite's server), ``portal migrate``, ``portal tenants apply``, ``portal api-keys
create`` and ``portal serve`` run as commands against it. The suite's own platform and database
are not involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest_asyncio
from reliability.demo_process import free_port

from support.cli import clean_env
from support.cli import portal as run_portal
from support.postgres import OwnPostgres, create_database

ROOT = Path(__file__).parents[2]
SLUG = "t-outage-shop"
BASE_DOMAIN = "portal.localhost"
ACQUIRE_TIMEOUT = 2.0
STATEMENT_TIMEOUT = 4.0
RETRY_AFTER = "7"
HANG_BOUND = 20.0
"""Seconds within which every answer must come (generous: the point is that nothing hangs)."""
TENANTS = f"""
[[isos]]
slug = "t-outage"
name = "Outage ISO"

[[isos.merchants]]
slug = "{SLUG}"
name = "Outage shop"

[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"
"""


def command_env(server: OwnPostgres, folder: Path) -> dict[str, str]:
    return clean_env(
        PORTAL_DATABASE_URL=server.dsn,
        PORTAL_DATA_DIR=str(folder / "data"),
        PORTAL_BASE_DOMAIN=BASE_DOMAIN,
        PORTAL_PUBLIC_SCHEME="http",
        PORTAL_DB_ACQUIRE_TIMEOUT=str(ACQUIRE_TIMEOUT),
        PORTAL_DB_STATEMENT_TIMEOUT=str(STATEMENT_TIMEOUT),
        PORTAL_UNAVAILABLE_RETRY_AFTER=RETRY_AFTER,
        PORTAL_LOG_LEVEL="info",
    )


def portal(env: dict[str, str], *args: str) -> str:
    done = run_portal(env, *args)
    assert done.returncode == 0, f"portal {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Served:
    server: OwnPostgres
    port: int
    api_key: str
    log: Path

    def client(self, host: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"host": f"{host}:{self.port}"},
            trust_env=False,
            timeout=HANG_BOUND + 10,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-8000:]


@pytest_asyncio.fixture(loop_scope="session")
async def served() -> AsyncIterator[Served]:
    """``portal serve`` against a migrated PostgreSQL of its own, with one merchant and an API key."""
    folder = Path(tempfile.mkdtemp(prefix="portal-outage-"))
    server = OwnPostgres(folder)
    process: asyncio.subprocess.Process | None = None
    try:
        await asyncio.to_thread(server.start)
        await create_database(server)
        env = command_env(server, folder)
        tenants = folder / "tenants.toml"
        tenants.write_text(TENANTS, encoding="utf-8")
        await asyncio.to_thread(portal, env, "migrate")
        await asyncio.to_thread(portal, env, "tenants", "apply", str(tenants))
        created = await asyncio.to_thread(portal, env, "api-keys", "create", "--merchant", SLUG)
        key = next(line.split()[1] for line in created.splitlines() if line.startswith("key:"))
        port = free_port()
        log = folder / "serve.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "portal.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                cwd=ROOT, env=env, stdout=out, stderr=out,
            )  # fmt: skip
        live = Served(server, port, key, log)
        async with live.client("localhost") as client:
            deadline = time.monotonic() + 60
            while True:
                assert process.returncode is None, live.output()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/-/ready")).status_code == 200:
                        break
                assert time.monotonic() < deadline, live.output()
                await asyncio.sleep(0.2)
        yield live
    finally:
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        try:
            await asyncio.to_thread(server.stop)
        except Exception:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Seen:
    what: str
    status: int
    content_type: str
    retry_after: str | None
    body: str
    seconds: float


async def request_all(live: Served) -> dict[str, Seen]:
    """One request of each kind, each timed; a transport error or a hang past the bound fails."""
    merchant = f"{SLUG}.{BASE_DOMAIN}"
    bearer = {"authorization": f"Bearer {live.api_key}"}
    asks = {
        "page": (merchant, "GET", "/", {"accept": "text/html"}),
        "page of a host not cached": (f"t-{uuid.uuid4().hex[:10]}.{BASE_DOMAIN}", "GET", "/", {"accept": "text/html"}),
        "login page": (merchant, "GET", "/login", {"accept": "text/html"}),
        "api": (f"api.{BASE_DOMAIN}", "GET", "/api/v1/customers?email=jane%40globalco.com", bearer),
        "api on the merchant host": (merchant, "GET", "/api/v1/customers?email=jane%40globalco.com", bearer),
        "health": ("localhost", "GET", "/-/health", {}),
        "ready": ("localhost", "GET", "/-/ready", {}),
        "ready on the merchant host": (merchant, "GET", "/-/ready", {}),
    }

    async def ask(what: str, host: str, method: str, path: str, headers: dict[str, str]) -> Seen:
        started = time.monotonic()
        async with live.client(host) as client:
            response = await client.request(method, path, headers=headers)
        return Seen(
            what,
            response.status_code,
            response.headers.get("content-type", ""),
            response.headers.get("retry-after"),
            response.text,
            time.monotonic() - started,
        )

    found = await asyncio.gather(*(ask(what, *ask_for) for what, ask_for in asks.items()))
    return {seen.what: seen for seen in found}


def assert_unavailable(seen: dict[str, Seen], live: Served, *, tenant_cached: bool = False) -> None:
    """Whatever needs the database answered 503 with ``Retry-After``, promptly; liveness stays 200.

    With ``tenant_cached`` the merchant's host may still be resolved from the cache (the
    connections were not lost, so nothing cleared it): pages that need nothing else may succeed.
    """
    for item in seen.values():
        assert item.status != 500, (item, live.output())
        assert item.seconds < HANG_BOUND, item
    pages = ["page of a host not cached"]
    if tenant_cached:
        assert seen["page"].status in (303, 503) and seen["login page"].status in (200, 503), seen
    else:
        pages += ["page", "login page"]
    for what in pages:
        page = seen[what]
        assert page.status == 503, (page, live.output())
        assert page.retry_after == RETRY_AFTER, page
        assert page.content_type.startswith("text/html"), page
        assert "Temporarily unavailable" in page.body, page.body
    for what in ("api", "api on the merchant host"):
        api = seen[what]
        assert api.status == 503, (api, live.output())
        assert api.retry_after == RETRY_AFTER, api
        assert api.content_type.startswith("application/problem+json"), api
        problem = httpx.Response(200, text=api.body).json()
        assert problem["status"] == 503 and problem["title"] == "Service Unavailable", problem
    assert seen["health"].status == 200, seen["health"]
    for what in ("ready", "ready on the merchant host"):
        ready = seen[what]
        assert ready.status == 503, ready
        assert ready.retry_after == RETRY_AFTER, ready
        body = httpx.Response(200, text=ready.body).json()
        assert body["status"] == "unavailable" and body["problems"], body
        assert body["problems"][0].startswith("database:"), body


def assert_healthy(seen: dict[str, Seen], live: Served) -> None:
    assert seen.pop("page of a host not cached").status == 404, live.output()
    for item in seen.values():
        assert item.status in (200, 303), (item, live.output())
    assert httpx.Response(200, text=seen["ready"].body).json() == {"status": "ready"}


async def healed(live: Served, seconds: float = 30) -> dict[str, Seen]:
    """Every kind of request succeeds again (within ``seconds``); no 500 on the way."""
    deadline = time.monotonic() + seconds
    while True:
        seen = await request_all(live)
        for item in seen.values():
            assert item.status != 500, (item, live.output())
        if all(item.status in (200, 303, 404) for item in seen.values()):
            return seen
        assert time.monotonic() < deadline, (seen, live.output())
        await asyncio.sleep(0.5)


async def test_database_outage_answers_503_and_heals(served: Served) -> None:
    live, server = served, served.server
    assert_healthy(await request_all(live), live)

    # every connection of the application role cut from the server's side: the pool reconnects
    admin = await asyncpg.connect(server.dsn)
    try:
        cut = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'portal_app'"
        )
    finally:
        await admin.close()
    assert cut >= 1
    assert_healthy(await healed(live), live)

    # the server stopped: every request is a 503 (liveness excepted), none hangs
    await asyncio.to_thread(server.stop)
    assert_unavailable(await request_all(live), live)
    assert_unavailable(await request_all(live), live)  # and again, once the pool knows it is gone

    await asyncio.to_thread(server.start)
    assert_healthy(await healed(live), live)

    # the server frozen: connections open, nothing answers; the timeouts turn that into 503s
    with server.frozen():
        assert_unavailable(await request_all(live), live, tenant_cached=True)
    assert_healthy(await healed(live), live)

    # a migration the code has but the database does not: not ready, and the answer says why
    admin = await asyncpg.connect(server.dsn)
    try:
        last = await admin.fetchrow("SELECT * FROM migration ORDER BY id DESC LIMIT 1")
        assert last is not None
        await admin.execute("DELETE FROM migration WHERE id = $1", last["id"])
        try:
            async with live.client("localhost") as client:
                response = await client.get("/-/ready")
            assert response.status_code == 503 and response.headers["retry-after"] == RETRY_AFTER, response.text
            problems = response.json()["problems"]
            assert problems == [f"migrations: pending {last['app_name']} (1); run portal migrate"], problems
        finally:
            await admin.execute(
                "INSERT INTO migration (id, name, app_name, ran_on) VALUES ($1, $2, $3, $4)",
                last["id"], last["name"], last["app_name"], last["ran_on"],
            )  # fmt: skip
    finally:
        await admin.close()
    assert_healthy(await request_all(live), live)

    log = live.output()
    assert "database unavailable on GET" in log, log
    assert "unhandled error" not in log, log
