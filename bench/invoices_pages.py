"""Invoice pages: SQL statements per request for 1, 12 and 500 invoices, and their speed under load.

Sets up, on a fresh database, a merchant with the invoices plugin and the sandbox gateway and
three customers with 1, 12 and 500 finalized invoices (made with the ledger's ``invoices.create``
and ``finalize``, one line each, issued a day apart, a third of them paid), then:

- counts the SQL statements one request runs, on the app served in this process with a statement
  log around asyncpg (``GET /invoices``, ``GET /`` with the three figures, ``GET /invoices/<id>``),
  as ``bench/cards_pages.py`` counts the card pages;
- serves the app with ``portal serve`` (uvicorn) in its own process and drives the list page of the
  customers with 12 and 500 invoices and the Overview over keep-alive HTTP/1.1 with
  ``--connections`` clients (wrk when installed, else httpx), each series for ``--duration`` seconds
  after ``--warmup`` seconds.

    uv run python bench/invoices_pages.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cards_pages import (
    WRK_SCRIPT,
    Series,
    StatementCount,
    StatementLog,
    Visitor,
    count_statements,
    host_of,
    httpx_series,
    kind,
    log_statements,
    portal_serve,
    say_constancy,
    say_series,
    serve_here,
    signed_in,
    wrk_series,
)
from harness import bench_platform, free_port, say

from portal.billing import invoices
from portal.billing.models import LineInput
from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import SYSTEM
from portal.platform import Platform
from portal.testing import apply_tenants, customer_id
from portal.web.app import create_app

ISO = "bench-inv-iso"
MERCHANT = "bench-inv"
COUNTS = (1, 12, 500)


def email_for(count: int) -> str:
    """The customer who has ``count`` invoices."""
    return f"inv{count}@example.com"


def tenant_file() -> str:
    """The merchant and its customers, as a tenant file."""
    customers = "".join(f'[[isos.merchants.customers]]\nemail = "{email_for(n)}"\nname = "Ivy"\n' for n in COUNTS)
    return (
        f'[[isos]]\nslug = "{ISO}"\nname = "Bench ISO"\n\n'
        f'[[isos.merchants]]\nslug = "{MERCHANT}"\nname = "Bench Invoices"\n'
        '[isos.merchants.gateway]\nkey = "sandbox"\n'
        "[isos.merchants.plugins.invoices]\n" + customers
    )


async def invoice_all(platform: Platform) -> dict[int, str]:
    """Give each customer its invoices (every third one marked paid); return the newest invoice id of each."""
    tenant = await platform.tenants.resolve(host_of(MERCHANT))
    assert tenant is not None
    now = datetime.now(UTC)
    newest: dict[int, str] = {}
    for count in COUNTS:
        customer = await customer_id(MERCHANT, email_for(count))
        async with tenant_transaction(tenant.merchant.iso_id):
            for n in range(count):
                at = now - timedelta(days=count - n)
                draft = await invoices.create(
                    tenant, customer_id=customer, currency="USD", due_at=at + timedelta(days=30), now=at,
                    lines=[LineInput(description=f"Order {n + 1}", unit_amount=1000 + n)], actor=SYSTEM,
                )  # fmt: skip
                made = await invoices.finalize(tenant, draft.id, now=at, actor=SYSTEM)
                if n % 3 == 0:
                    await invoices.record_payment(tenant, made.id, made.total, now=at, actor=SYSTEM)
                newest[count] = made.id
            rows = await fetch(
                "SELECT count(*) AS n FROM portal_billing_invoice WHERE customer_id = $1 AND number IS NOT NULL",
                customer,
            )
            assert rows[0]["n"] == count
    return newest


async def run(database_url: str, connections: int, duration: float, warmup: float, client: str) -> None:
    """Create the database, set up, count statements, measure, report, drop the database."""
    wrk = shutil.which("wrk") if client in ("auto", "wrk") else None
    if client == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log_statements()
    async with bench_platform(database_url) as (platform, _merchant):
        with tempfile.TemporaryDirectory() as folder:
            await apply_tenants(platform, tenant_file(), Path(folder))
        newest = await invoice_all(platform)
        visitors = {n: await signed_in(platform, MERCHANT, email_for(n)) for n in COUNTS}

        log = StatementLog(create_app(platform, manage_platform=False))
        port = free_port()
        found: list[StatementCount] = []
        async with serve_here(log, port), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for n, visitor in visitors.items():
                listed = await http.get("/invoices", headers=visitor.headers)
                assert listed.status_code == 200 and listed.text.count('<tr id="inv_') == min(n, 25)
            pages: list[tuple[str, int, Visitor, str]] = [
                *(("GET /invoices", n, v, "/invoices") for n, v in visitors.items()),
                *(("GET /invoices?status=paid", n, v, "/invoices?status=paid") for n, v in visitors.items()),
                *(("GET /", n, v, "/") for n, v in visitors.items()),
                *(("GET /invoices/<id>", n, v, f"/invoices/{newest[n]}") for n, v in visitors.items()),
            ]
            for page, n, visitor, path in pages:
                statements, varied = await count_statements(http, log, visitor, path)
                found.append(StatementCount(page, str(n), statements, varied))

        results: list[Series] = []
        port = free_port()
        async with portal_serve(platform.settings.database_url or "", port):
            with tempfile.TemporaryDirectory() as folder:
                script = Path(folder) / "bench.lua"
                script.write_text(WRK_SCRIPT, encoding="utf-8")
                for name, visitor, path in (
                    ("invoice list (12)", visitors[12], "/invoices"),
                    ("invoice list (500)", visitors[500], "/invoices"),
                    ("overview with figures (500)", visitors[500], "/"),
                ):
                    url = f"http://127.0.0.1:{port}{path}"
                    if wrk is not None:
                        result = await wrk_series(name, wrk, script, url, visitor, connections, duration, warmup)
                    else:
                        result = await httpx_series(name, url, visitor, connections, duration, warmup)
                    results.append(result)

    say("SQL statements per request (queries; all statements including BEGIN/COMMIT, tenant scope, pool reset)")
    say(f"{'page':<28} {'invoices':>9} {'queries':>8} {'statements':>11}")
    for count in found:
        flag = "  (varied between requests; most common shown)" if count.varied else ""
        say(f"{count.page:<28} {count.cards:>9} {count.queries:>8} {len(count.statements):>11}{flag}")
    pages = ("GET /invoices", "GET /invoices?status=paid", "GET /", "GET /invoices/<id>")
    say_constancy(found, pages, COUNTS, "invoices")
    say("")
    say("statements of one GET /invoices (500 invoices):")
    for statement in next(c for c in found if c.page == "GET /invoices" and c.cards == "500").statements:
        say(f"  [{kind(statement)}] {statement[:110]}")
    say("")
    say(
        f"portal serve (1 uvicorn worker); {connections} keep-alive connections "
        f"({'wrk -t1' if wrk else 'httpx'}), {duration:g} s per series after {warmup:g} s warm-up"
    )
    say_series(results, 34)


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10, help="seconds per series")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per series")
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.connections, args.duration, args.warmup, args.client))


if __name__ == "__main__":
    main()
