"""Card pages under load: requests per second, latency and SQL statements per request.

Sets up, on a fresh database, a merchant with the cards plugin and the sandbox gateway, a merchant
without the cards plugin, and customers with 1, N and 20 cards on file, added through the real
routes (sandbox tokenization, then ``POST /payment-methods``). Then:

- counts the SQL statements one request runs, on the app served in this process with a statement
  log around asyncpg (``GET /payment-methods`` and ``GET /`` with 1, N and 20 cards, and the references);
- serves the app with ``portal serve`` (uvicorn) in its own process and drives it over keep-alive
  HTTP/1.1 with ``--connections`` concurrent clients (wrk when installed, else httpx), each series
  for ``--duration`` seconds after ``--warmup`` seconds of warm-up:

  - ``cards list``: ``GET /payment-methods`` of the customer with N cards;
  - ``overview``: ``GET /`` of the same customer, with the cards widget;
  - ``overview, cards off``: ``GET /`` of a customer with the same email at a merchant without the
    cards plugin, the reference: the same page frame and session without any card work;
  - ``login``: ``GET /login`` without a session, the floor: a rendered page with no database work.

Prints requests per second, median, p95 and p99 latency per series, and the statement counts.

    uv run python bench/cards_pages.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

The URL is an owner connection to any database of the server; the script creates its own database,
migrates it with ``Platform.migrate()``, and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from asyncpg.connection import Connection
from harness import BASE_DOMAIN, bench_platform, free_port, say

from portal.db.engine import tenant_transaction
from portal.platform import Platform
from portal.testing import apply_tenants, customer_id
from portal.web.app import create_app
from portal.web.sessions import COOKIE_NAME, start_session
from portal_cards import store

ISO = "bench-iso"
CARDS_MERCHANT = "bench-cards"
PLAIN_MERCHANT = "bench-plain"
NUMBERS = ("4111111111111111", "5555555555554444")
"""Sandbox cards that approve (Visa, Mastercard); cards alternate between them."""

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TOKENIZATION_KEY = re.compile(r'data-tokenization-key="([^"]+)"')
SAVEPOINT_NAME = re.compile(r"__asyncpg_savepoint_[0-9a-f]+__")

WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not_ok = 0 end
function response(status, headers, body) if status ~= 200 then not_ok = not_ok + 1 end end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("not_ok") end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "not_ok": %d, "errors": %d, "p50": %d, "p95": %d, "p99": %d}\\n',
    summary.requests, summary.duration / 1e6, bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def host_of(merchant: str) -> str:
    """The merchant's host under the benchmark's base domain."""
    return f"{merchant}.{BASE_DOMAIN}"


def email_for(cards: int) -> str:
    """The customer who keeps ``cards`` cards on file."""
    return f"cards{cards}@example.com"


def tenant_file(counts: list[int], main: int) -> str:
    """Both merchants and their customers, as a tenant file."""
    customers = "".join(
        f'[[isos.merchants.customers]]\nemail = "{email_for(n)}"\nname = "Casey Card"\n' for n in counts
    )
    return (
        f'[[isos]]\nslug = "{ISO}"\nname = "Bench ISO"\n\n'
        f'[[isos.merchants]]\nslug = "{CARDS_MERCHANT}"\nname = "Bench Cards"\n'
        '[isos.merchants.gateway]\nkey = "sandbox"\n'
        "[isos.merchants.plugins.cards]\nsettings = { max_cards = 20 }\n" + customers + "\n"
        f'[[isos.merchants]]\nslug = "{PLAIN_MERCHANT}"\nname = "Bench Plain"\n'
        '[isos.merchants.gateway]\nkey = "sandbox"\n'
        f'[[isos.merchants.customers]]\nemail = "{email_for(main)}"\nname = "Casey Card"\n'
    )


@dataclass(frozen=True)
class Visitor:
    """A browser of one merchant host: its Host header and, when signed in, its cookie."""

    host: str
    cookie: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Request headers that make a plain loopback request this visitor's."""
        return {"Host": self.host, **({"Cookie": self.cookie} if self.cookie else {})}


async def signed_in(platform: Platform, merchant: str, email: str) -> Visitor:
    """A session for the customer with ``email``, made the way ``portal.testing.sign_in`` makes it."""
    host = host_of(merchant)
    tenant = await platform.tenants.resolve(host)
    assert tenant is not None, f"no tenant at {host}"
    token = await start_session(tenant, await customer_id(merchant, email), timedelta(hours=2))
    return Visitor(host, f"{COOKIE_NAME}={token}")


async def add_cards(client: httpx.AsyncClient, visitor: Visitor, count: int) -> None:
    """Put ``count`` cards on file the way a customer does: hosted fields, tokenize, submit."""
    for n in range(count):
        page = await client.get("/payment-methods/new", headers=visitor.headers)
        key, csrf = TOKENIZATION_KEY.search(page.text), CSRF.search(page.text)
        assert page.status_code == 200 and key and csrf, f"add-card page: {page.status_code}"
        expiry = f"{n % 12 + 1:02d} / {30 + n // 12}"
        tokenized = await client.post(
            "/sandbox-gateway/tokenize",
            json={"tokenization_key": key.group(1), "ccnumber": NUMBERS[n % 2], "ccexp": expiry, "cvv": "123"},
            headers=visitor.headers,
        )
        assert tokenized.status_code == 200, tokenized.text
        added = await client.post(
            "/payment-methods",
            data={"csrf_token": csrf.group(1), "payment_token": tokenized.json()["token"]},
            headers=visitor.headers,
        )
        assert added.status_code == 303 and "done=added" in added.headers["location"], added.text


# --- statements per request -------------------------------------------------------------------

_STATEMENTS: ContextVar[list[str] | None] = ContextVar("bench_statements", default=None)


def log_statements() -> None:
    """Make asyncpg note every statement it sends into the current request's log (this process only)."""
    execute, run, run_many = Connection.execute, Connection._execute, Connection._executemany

    def note(query: str) -> None:
        found = _STATEMENTS.get()
        if found is not None:  # savepoint names carry a per-connection counter: keep them comparable
            found.append(SAVEPOINT_NAME.sub("__asyncpg_savepoint_n__", " ".join(query.split())))

    async def logged_execute(self: Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:  # with arguments, execute() goes through _execute()
            note(query)
        return await execute(self, query, *args, **kwargs)

    async def logged_run(self: Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        note(query)
        return await run(self, query, *args, **kwargs)

    async def logged_run_many(self: Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        note(query)
        return await run_many(self, query, *args, **kwargs)

    Connection.execute = logged_execute  # type: ignore[method-assign]
    Connection._execute = logged_run  # type: ignore[method-assign]
    Connection._executemany = logged_run_many  # type: ignore[method-assign]


@contextmanager
def statements_into(found: list[str]) -> Iterator[None]:
    """Note the statements this task, and the tasks it starts, send into ``found`` (after :func:`log_statements`)."""
    token = _STATEMENTS.set(found)
    try:
        yield
    finally:
        _STATEMENTS.reset(token)


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class StatementLog:
    """ASGI wrapper keeping the statements each request ran, by its ``x-bench-id`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: dict[str, list[str]] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Run the request with a fresh statement log."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = dict(scope["headers"]).get(b"x-bench-id", b"").decode()
        statements: list[str] = []
        token = _STATEMENTS.set(statements)
        try:
            await self.app(scope, receive, send)
        finally:
            _STATEMENTS.reset(token)
            self.requests[key] = statements

    async def of(self, key: str) -> list[str]:
        """The statements of a request, once it has finished."""
        for _ in range(200):
            if key in self.requests:
                return self.requests.pop(key)
            await asyncio.sleep(0.005)
        raise TimeoutError(f"request {key} did not finish")


def kind(statement: str) -> str:
    """``query``, or the transaction plumbing around queries."""
    head = statement.split(" ", 1)[0].upper().rstrip(";")
    if head in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
        return "transaction"
    if statement.startswith("SELECT set_config('portal.iso_id'"):
        return "tenant scope"
    if "RESET ALL" in statement:
        return "pool reset"
    return "query"


@dataclass(frozen=True)
class StatementCount:
    """What one request of a page ran."""

    page: str
    cards: str
    statements: list[str]
    varied: bool

    @property
    def queries(self) -> int:
        """Statements that read or write data."""
        return sum(1 for s in self.statements if kind(s) == "query")


async def count_statements(
    client: httpx.AsyncClient, log: StatementLog, visitor: Visitor, path: str, repeats: int = 5
) -> tuple[list[str], bool]:
    """The statements one request runs (after two warm-up requests), and whether repeats differed."""
    seen: list[list[str]] = []
    for n in range(2 + repeats):
        key = f"{visitor.host}{path}#{n}"
        response = await client.get(path, headers={**visitor.headers, "x-bench-id": key})
        assert response.status_code == 200, f"{path} at {visitor.host}: {response.status_code}"
        statements = await log.of(key)
        if n >= 2:
            seen.append(statements)
    common = Counter(tuple(s) for s in seen).most_common(1)[0][0]
    return list(common), any(s != list(common) for s in seen)


@asynccontextmanager
async def serve_here(app: ASGIApp, port: int) -> AsyncIterator[None]:
    """Serve ``app`` with uvicorn in this process's event loop."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


# --- load ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One series' outcome; latencies in milliseconds."""

    name: str
    requests: int
    seconds: float
    median: float
    p95: float
    p99: float
    failed: int

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


@asynccontextmanager
async def portal_serve(database_url: str, port: int) -> AsyncIterator[None]:
    """``portal serve`` (one uvicorn worker) in its own process, until the block ends."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env.update(
        PORTAL_DATABASE_URL=database_url,
        PORTAL_BASE_DOMAIN=BASE_DOMAIN,
        PORTAL_HOST="127.0.0.1",
        PORTAL_PORT=str(port),
        PORTAL_WEB_WORKERS="1",
        PORTAL_LOG_LEVEL="warning",
    )
    with tempfile.TemporaryFile() as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "portal.cli", "serve", env=env, stdout=output, stderr=output
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(300):
                    if process.returncode is not None:
                        break
                    try:
                        if (await client.get("/-/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise TimeoutError("portal serve did not answer /-/health")
            if process.returncode is not None:
                output.seek(0)
                raise RuntimeError("portal serve stopped:\n" + output.read().decode(errors="replace")[-3000:])
            yield
        finally:
            if process.returncode is None:
                process.terminate()
                await asyncio.wait_for(process.wait(), timeout=30)


def say_series(results: list[Series], width: int) -> None:
    """The load series as a table: rate, median, p95, p99 and failed requests."""
    say(f"{'series':<{width}} {'requests/s':>10} {'median':>10} {'p95':>10} {'p99':>10} {'failed':>7}")
    for s in results:
        say(f"{s.name:<{width}} {s.rate:>10.1f} {s.median:>7.2f} ms {s.p95:>7.2f} ms {s.p99:>7.2f} ms {s.failed:>7d}")


def say_constancy(found: list[StatementCount], pages: tuple[str, ...], sizes: tuple[int, ...], unit: str) -> None:
    """For each page, whether its queries and statements stay the same across the history sizes."""
    for page in pages:
        seen = {(c.queries, len(c.statements)) for c in found if c.page == page}
        verdict = "constant" if len(seen) == 1 else f"GROWS with the number of {unit}"
        say(f"{page}: {verdict} across {', '.join(str(n) for n in sizes)} {unit}")


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)]


async def load_with_wrk(
    wrk: str, script: Path, url: str, visitor: Visitor, connections: int, seconds: float
) -> dict[str, Any]:
    """One wrk run (one thread, ``connections`` keep-alive connections); its summary."""
    headers = [item for name, value in visitor.headers.items() for item in ("-H", f"{name}: {value}")]
    process = await asyncio.create_subprocess_exec(
        wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), *headers, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed: {err.decode()}{out.decode()}")
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


async def wrk_series(
    name: str, wrk: str, script: Path, url: str, visitor: Visitor, connections: int, duration: float, warmup: float
) -> Series:
    """Warm up, then measure one page with wrk."""
    if warmup > 0:
        await load_with_wrk(wrk, script, url, visitor, connections, warmup)
    found = await load_with_wrk(wrk, script, url, visitor, connections, duration)
    return Series(
        name=name,
        requests=found["requests"],
        seconds=found["seconds"],
        median=found["p50"] / 1000,
        p95=found["p95"] / 1000,
        p99=found["p99"] / 1000,
        failed=found["not_ok"] + found["errors"],
    )


async def httpx_series(
    name: str, url: str, visitor: Visitor, connections: int, duration: float, warmup: float
) -> Series:
    """Warm up, then measure one page with ``connections`` httpx clients, one keep-alive connection each."""
    samples: list[float] = []
    failed = 0

    async def client_loop(client: httpx.AsyncClient, until: float, keep: bool) -> None:
        nonlocal failed
        while time.perf_counter() < until:
            started = time.perf_counter()
            response = await client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            if keep:
                samples.append(elapsed)
                failed += response.status_code != 200

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(headers=visitor.headers, limits=limits, timeout=10) for _ in range(connections)]
    try:
        for seconds, keep in ((warmup, False), (duration, True)):
            started = time.perf_counter()
            until = started + seconds
            await asyncio.gather(*(client_loop(client, until, keep) for client in clients))
            elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    ordered = sorted(samples)
    return Series(
        name=name,
        requests=len(ordered),
        seconds=elapsed,
        median=statistics.median(ordered),
        p95=percentile(ordered, 0.95),
        p99=percentile(ordered, 0.99),
        failed=failed,
    )


# --- the run -------------------------------------------------------------------------------------


async def run(database_url: str, cards: int, connections: int, duration: float, warmup: float, client: str) -> None:
    """Create the database, set up, count statements, measure, report, drop the database."""
    wrk = shutil.which("wrk") if client in ("auto", "wrk") else None
    if client == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    counts = sorted({1, cards, 20})
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log_statements()
    async with bench_platform(database_url) as (platform, _merchant):
        with tempfile.TemporaryDirectory() as folder:
            await apply_tenants(platform, tenant_file(counts, cards), Path(folder))
        shoppers = {n: await signed_in(platform, CARDS_MERCHANT, email_for(n)) for n in counts}
        plain = await signed_in(platform, PLAIN_MERCHANT, email_for(cards))
        anonymous = Visitor(host_of(CARDS_MERCHANT))

        log = StatementLog(create_app(platform, manage_platform=False))
        port = free_port()
        found: list[StatementCount] = []
        async with serve_here(log, port), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for n, shopper in shoppers.items():
                await add_cards(http, shopper, n)
            tenant = await platform.tenants.resolve(host_of(CARDS_MERCHANT))
            assert tenant is not None
            for n in counts:
                customer = await customer_id(CARDS_MERCHANT, email_for(n))
                async with tenant_transaction(tenant.merchant.iso_id):
                    on_file = await store.cards_on_file(tenant.merchant, customer)
                assert len(on_file) == n, f"{len(on_file)} cards on file, expected {n}"
            pages = [
                *(("GET /payment-methods", str(n), shopper, "/payment-methods") for n, shopper in shoppers.items()),
                *(("GET /", str(n), shopper, "/") for n, shopper in shoppers.items()),
                ("GET /, cards off", "-", plain, "/"),
                ("GET /login", "-", anonymous, "/login"),
            ]
            for page, label, visitor, path in pages:
                statements, varied = await count_statements(http, log, visitor, path)
                found.append(StatementCount(page, label, statements, varied))

        series = [
            (f"cards list ({cards} cards)", shoppers[cards], "/payment-methods"),
            (f"overview ({cards} cards)", shoppers[cards], "/"),
            ("overview, cards off (reference)", plain, "/"),
            ("login (floor)", anonymous, "/login"),
        ]
        results: list[Series] = []
        port = free_port()
        async with portal_serve(platform.settings.database_url or "", port):
            with tempfile.TemporaryDirectory() as folder:
                script = Path(folder) / "bench.lua"
                script.write_text(WRK_SCRIPT, encoding="utf-8")
                for name, visitor, path in series:
                    url = f"http://127.0.0.1:{port}{path}"
                    if wrk is not None:
                        result = await wrk_series(name, wrk, script, url, visitor, connections, duration, warmup)
                    else:
                        result = await httpx_series(name, url, visitor, connections, duration, warmup)
                    results.append(result)

    say(
        f"portal serve (1 uvicorn worker); {connections} keep-alive connections "
        f"({'wrk -t1' if wrk else 'httpx'}), {duration:g} s per series after {warmup:g} s warm-up"
    )
    say_series(results, 32)
    reference = results[2]
    for s in results[:2]:
        say(
            f"{s.name}: {s.median - reference.median:+.2f} ms median, "
            f"{(s.rate / reference.rate - 1) * 100:+.1f}% requests/s against the reference"
        )
    say("")
    say("SQL statements per request (queries; all statements including BEGIN/COMMIT, tenant scope, pool reset)")
    say(f"{'page':<24} {'cards':>5} {'queries':>8} {'statements':>11}")
    for count in found:
        flag = "  (varied between requests; most common shown)" if count.varied else ""
        say(f"{count.page:<24} {count.cards:>5} {count.queries:>8} {len(count.statements):>11}{flag}")
    say_constancy(found, ("GET /payment-methods", "GET /"), tuple(counts), "cards")
    say("")
    say(f"statements of one GET /payment-methods ({cards} cards):")
    for statement in next(c for c in found if c.page == "GET /payment-methods" and c.cards == str(cards)).statements:
        say(f"  [{kind(statement)}] {statement[:110]}")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--cards", type=int, default=5, choices=range(1, 21), metavar="N", help="1 to 20")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10, help="seconds per series")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per series")
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.cards, args.connections, args.duration, args.warmup, args.client))


if __name__ == "__main__":
    main()
