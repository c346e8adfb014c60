"""The customer's pages on a seeded installation (``bench/seed.py``), against the reference, and their statements.

For a probe customer of a database made by ``bench/seed.py`` (with 1, 12 or 500 invoices; the
switch page is measured for the customer whose email is at five merchants), this:

- migrates the database (so indexes added since it was seeded are there) and signs the probes in
  with ``start_session``, as the other benchmarks do;
- counts the SQL statements one request of each page runs, on the app served in this process with
  the statement log of ``bench/cards_pages.py``;
- seeds the reference table of ``../shared/bench/ref_app.py`` in the same database (once), serves
  the reference and ``portal serve`` with one uvicorn worker each in processes of their own, and
  drives them with wrk in alternation (reference, then the page), ``--rounds`` times;
- with ``--plans DIR``, writes ``EXPLAIN (ANALYZE, BUFFERS)`` of every query each page runs, with
  the parameters it ran with, in the tenant scope the page used (``portal.iso_id`` set as
  ``tenant_transaction`` sets it, as the application role, so row-level security applies), to
  ``DIR/<page>.txt``; ``--plans-only`` skips the load.

    uv run python bench/scale_pages.py --database-url postgresql://postgres@127.0.0.1:5432/postgres \
        --name portal_bench_100k --duration 5 --warmup 2 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asyncpg.connection import Connection
from cards_pages import (
    WRK_SCRIPT,
    Series,
    StatementCount,
    StatementLog,
    Visitor,
    count_statements,
    kind,
    log_statements,
    portal_serve,
    serve_here,
    signed_in,
    wrk_series,
)
from harness import BASE_DOMAIN, free_port, no_worker_kick, say
from overview_page import reference_serve, seed_reference

from portal.config import Settings
from portal.db.engine import with_database
from portal.db.security import APP_ROLE
from portal.platform import Platform
from portal.web.app import create_app

PAGES = ("overview", "invoice list", "invoice", "subscriptions", "cards", "switch")


@dataclass(frozen=True)
class Page:
    """One measured page: its name, path and who requests it."""

    name: str
    path: str
    visitor: Visitor


async def probes(dsn: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The probes ``bench/seed.py`` recorded, and each probe's newest invoice id."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT * FROM bench_probe")
        newest = {
            row["kind"]: await connection.fetchval(
                "SELECT id FROM portal_billing_invoice WHERE customer_id = $1 AND number IS NOT NULL "
                "ORDER BY issued_at DESC, id DESC LIMIT 1",
                row["customer_id"],
            )
            for row in rows
        }
        has_reference = await connection.fetchval("SELECT to_regclass('ref_invoice') IS NOT NULL")
    finally:
        await connection.close()
    if not has_reference:
        await seed_reference(dsn)
    return {row["kind"]: dict(row) for row in rows}, newest


async def pages_of(platform: Platform, dsn: str, probe: str) -> tuple[list[Page], str]:
    """The measured pages for the probe with ``probe`` invoices, and its ISO id."""
    found, newest = await probes(dsn)
    shopper, switcher = found[probe], found["switch"]
    visitor = await signed_in(platform, shopper["merchant_slug"], shopper["email"])
    other = await signed_in(platform, switcher["merchant_slug"], switcher["email"])
    tenant = await platform.tenants.resolve(shopper["host"])
    assert tenant is not None
    pages = [
        Page("overview", "/", visitor),
        Page("invoice list", "/invoices", visitor),
        Page("invoice", f"/invoices/{newest[probe]}", visitor),
        Page("subscriptions", "/subscriptions", visitor),
        Page("cards", "/payment-methods", visitor),
        Page("switch", "/switch", other),
    ]
    return pages, tenant.merchant.iso_id


# --- query plans ---------------------------------------------------------------------------------

_CALLS: ContextVar[list[tuple[str, tuple[Any, ...]]] | None] = ContextVar("bench_calls", default=None)


def log_calls() -> None:
    """Make asyncpg note every statement it runs with arguments into the current log (this process only)."""
    run = Connection._execute

    async def logged_run(self: Connection, query: str, args: Any, *rest: Any, **kwargs: Any) -> Any:
        found = _CALLS.get()
        if found is not None:
            found.append((query, tuple(args)))
        return await run(self, query, args, *rest, **kwargs)

    Connection._execute = logged_run  # type: ignore[method-assign]


@contextmanager
def calls_into(found: list[tuple[str, tuple[Any, ...]]]) -> Iterator[None]:
    """Note the statements with arguments this task runs into ``found`` (after :func:`log_calls`)."""
    token = _CALLS.set(found)
    try:
        yield
    finally:
        _CALLS.reset(token)


async def explain(connection: asyncpg.Connection, iso_id: str, query: str, args: tuple[Any, ...]) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of one statement as the application role in the ISO's scope, rolled back."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute(f"SET LOCAL ROLE {APP_ROLE}")
        await connection.execute("SELECT set_config('portal.iso_id', $1, true)", iso_id)
        rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query, *args)
    finally:
        await transaction.rollback()
    return "\n".join(row[0] for row in rows)


def save(folder: Path, name: str, parts: list[str]) -> Path:
    """Write one page's plans; the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name.replace(' ', '_')}.txt"
    target.write_text("\n".join(parts), encoding="utf-8")
    return target


async def nested_plans(connection: asyncpg.Connection, iso_id: str, query: str, args: tuple[Any, ...]) -> list[str]:
    """The plans of the statements a function runs, by ``auto_explain`` (loaded for this connection), rolled back."""
    messages: list[str] = []

    def listen(_: Any, message: Any) -> None:
        messages.append(str(message.message))

    connection.add_log_listener(listen)
    transaction = connection.transaction()
    await transaction.start()
    try:
        for setting in ("log_min_duration = 0", "log_analyze = on", "log_buffers = on", "log_nested_statements = on",
                        "log_level = notice"):  # fmt: skip
            await connection.execute(f"SET LOCAL auto_explain.{setting}")
        await connection.execute(f"SET LOCAL ROLE {APP_ROLE}")
        await connection.execute("SELECT set_config('portal.iso_id', $1, true)", iso_id)
        await connection.fetch(query, *args)
    finally:
        await transaction.rollback()
        connection.remove_log_listener(listen)
    skipped = ("Query Text: SELECT set_config", f"Query Text: {query.strip()}")
    return [message for message in messages if "Query Text" in message and not any(s in message for s in skipped)]


async def write_plans(platform: Platform, dsn: str, pages: list[Page], iso_id: str, folder: Path) -> None:
    """Each page's queries with their plans, into ``folder/<page>.txt``."""
    log_calls()
    app = create_app(platform, manage_platform=False)
    connection = await asyncpg.connect(dsn)
    await connection.execute("LOAD 'auto_explain'")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as client:  # type: ignore[arg-type]
            for page in pages:
                url = f"http://{page.visitor.host}{page.path}"
                for _ in range(2):  # warm: caches filled, as under load
                    await client.get(url, headers=page.visitor.headers)
                calls: list[tuple[str, tuple[Any, ...]]] = []
                with calls_into(calls):
                    response = await client.get(url, headers=page.visitor.headers)
                assert response.status_code == 200, f"{page.path}: {response.status_code}"
                parts = [f"# GET {page.path} ({page.name}), {len(calls)} statements with arguments\n"]
                for number, (query, args) in enumerate(calls, 1):
                    text = " ".join(query.split())
                    if kind(text) != "query":
                        continue
                    plan = await explain(connection, iso_id, query, args)
                    shown = ", ".join(repr(arg)[:60] for arg in args)
                    parts.append(f"## query {number}\n{query.strip()}\n-- arguments: {shown}\n\n{plan}\n")
                    if plan.startswith("Function Scan"):
                        for nested in await nested_plans(connection, iso_id, query, args):
                            parts.append(f"### inside the function (auto_explain)\n{nested}\n")
                say(f"plans of {page.path} written to {save(folder, page.name, parts)}")
    finally:
        await connection.close()


# --- the run -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    """Migrate, sign in, count statements, write plans, measure in alternation, report."""
    wrk = shutil.which("wrk")
    if wrk is None and not args.plans_only:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log_statements()
    dsn = with_database(args.database_url, args.name)
    platform = Platform(Settings(database_url=dsn, base_domain=BASE_DOMAIN))
    await platform.migrate()
    await platform.start()
    found: list[StatementCount] = []
    try:
        with no_worker_kick():
            pages, iso_id = await pages_of(platform, dsn, args.probe)
            if args.plans:
                await write_plans(platform, dsn, pages, iso_id, Path(args.plans))
            if args.plans_only:
                return
            log = StatementLog(create_app(platform, manage_platform=False))
            port = free_port()
            async with serve_here(log, port), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for page in pages:
                    statements, varied = await count_statements(http, log, page.visitor, page.path)
                    found.append(StatementCount(page.name, args.probe, statements, varied))
    finally:
        await platform.stop()

    results: list[tuple[str, Series, Series]] = []
    portal_port, reference_port = free_port(), free_port()
    assert wrk is not None
    async with portal_serve(dsn, portal_port), reference_serve(dsn, reference_port):
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "bench.lua"
            script.write_text(WRK_SCRIPT, encoding="utf-8")
            for _ in range(args.rounds):
                for page in pages:
                    reference = await wrk_series(
                        "reference", wrk, script, f"http://127.0.0.1:{reference_port}/", Visitor("127.0.0.1"),
                        args.connections, args.duration, args.warmup,
                    )  # fmt: skip
                    measured = await wrk_series(
                        page.name, wrk, script, f"http://127.0.0.1:{portal_port}{page.path}", page.visitor,
                        args.connections, args.duration, args.warmup,
                    )  # fmt: skip
                    results.append((page.name, measured, reference))
    report(args, pages, found, results)


def report(
    args: argparse.Namespace, pages: list[Page], found: list[StatementCount], results: list[tuple[str, Series, Series]]
) -> None:
    """The table: per page, req/s, the reference's, the ratio, queries and statements."""
    say(
        f"{args.name}, probe with {args.probe} invoices; wrk -t1 -c{args.connections}, {args.duration:g} s per "
        f"series after {args.warmup:g} s, {args.rounds} round(s), reference and page in alternation"
    )
    say(f"{'page':<14} {'path':<34} {'req/s':>8} {'ref req/s':>10} {'ratio':>6} {'p50':>9} {'queries':>8} {'stmts':>6}")
    for page in pages:
        runs = [(m, r) for name, m, r in results if name == page.name]
        rate = statistics.median(m.rate for m, _ in runs)
        reference = statistics.median(r.rate for _, r in runs)
        ratio = statistics.median(m.rate / r.rate for m, r in runs)
        failed = sum(m.failed for m, _ in runs)
        count = next(c for c in found if c.page == page.name)
        flag = f"  ({failed} failed)" if failed else ""
        flag += "  (statements varied)" if count.varied else ""
        path = page.path if len(page.path) <= 34 else page.path[:31] + "..."
        median = statistics.median(m.median for m, _ in runs)
        say(
            f"{page.name:<14} {path:<34} {rate:>8.1f} {reference:>10.1f} {ratio:>6.2f} {median:>6.2f} ms "
            f"{count.queries:>8} {len(count.statements):>6}{flag}"
        )


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--name", required=True, help="a database seeded by bench/seed.py")
    parser.add_argument("--probe", choices=("1", "12", "500"), default="12", help="invoices of the probe customer")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=5, help="seconds per series")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per series")
    parser.add_argument("--rounds", type=int, default=1, help="reference/page pairs per page")
    parser.add_argument("--plans", help="write EXPLAIN (ANALYZE, BUFFERS) of each page's queries into this folder")
    parser.add_argument("--plans-only", action="store_true", help="write the plans, skip the load")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
