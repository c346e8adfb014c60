"""The Overview with every widget and *Recent activity*, against the reference page, and its statements.

Sets up, on a fresh database, a merchant with the cards, subscriptions and invoices plugins and the
sandbox gateway, and three customers with 1, 12 and 500 finalized invoices (a third of them paid,
made with the ledger's ``invoices.create``, ``finalize`` and ``pay_invoice``), two subscriptions
each and a card on file, so the Overview shows all its widgets and a full activity feed. Then:

- counts the SQL statements one ``GET /`` runs for each customer, on the app served in this
  process with a statement log around asyncpg (as ``bench/cards_pages.py`` does);
- seeds the reference table of ``../shared/bench/ref_app.py`` in the same database and serves the
  reference with uvicorn (one worker, its own process), next to ``portal serve`` (one uvicorn
  worker, its own process);
- drives both with wrk (one thread, ``--connections`` keep-alive connections) in alternation,
  ``--rounds`` times each, ``--duration`` seconds per series after ``--warmup`` seconds, and reports
  the ratio of the portal's requests per second to the reference's.

    uv run python bench/overview_page.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    kind,
    log_statements,
    portal_serve,
    say_series,
    serve_here,
    signed_in,
    wrk_series,
)
from harness import bench_platform, free_port, say

from portal.billing import catalog, charges, invoices, subscriptions
from portal.billing.models import LineInput
from portal.db.engine import tenant_transaction
from portal.events.bus import SYSTEM
from portal.payments import methods
from portal.payments.sandbox import SandboxAdapter
from portal.platform import Platform
from portal.tenancy.models import CustomerView
from portal.testing import apply_tenants, customer_id
from portal.web.app import create_app

ISO = "bench-overview-iso"
MERCHANT = "bench-overview"
COUNTS = (1, 12, 500)
REFERENCE = Path(os.environ.get("PORTAL_REF_APP", Path(__file__).resolve().parents[2] / "shared/bench/ref_app.py"))


def email_for(count: int) -> str:
    """The customer who has ``count`` invoices."""
    return f"overview{count}@example.com"


def tenant_file() -> str:
    """The merchant and its customers, as a tenant file."""
    customers = "".join(f'[[isos.merchants.customers]]\nemail = "{email_for(n)}"\nname = "Jane"\n' for n in COUNTS)
    return (
        f'[[isos]]\nslug = "{ISO}"\nname = "Bench ISO"\n\n'
        f'[[isos.merchants]]\nslug = "{MERCHANT}"\nname = "Greenfield Bakery"\ntimezone = "America/New_York"\n'
        '[isos.merchants.gateway]\nkey = "sandbox"\n'
        "[isos.merchants.plugins.cards]\n[isos.merchants.plugins.subscriptions]\n[isos.merchants.plugins.invoices]\n"
        + customers
    )


async def history(platform: Platform) -> None:
    """A card, two subscriptions and ``n`` invoices (a third paid) for each customer."""
    tenant = await platform.tenants.resolve(host_of(MERCHANT))
    assert tenant is not None
    now = datetime.now(UTC)
    adapter = platform.gateways.for_tenant(tenant)
    assert isinstance(adapter, SandboxAdapter)
    async with tenant_transaction(tenant.merchant.iso_id):
        prices = []
        for name, amount in (("Monthly Bread Box", 3900), ("Office Breakfast Plan", 289000)):
            product = await catalog.create_product(tenant, name=name, actor=SYSTEM)
            prices.append(
                await catalog.create_price(
                    tenant, product_id=product.id, currency="USD", unit_amount=amount, interval="month", actor=SYSTEM
                )
            )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(create_app(platform, manage_platform=False))) as http:
        for count in COUNTS:
            customer = CustomerView(
                id=await customer_id(MERCHANT, email_for(count)), merchant_id=tenant.merchant.id,
                email=email_for(count), name="Jane",
            )  # fmt: skip
            body = {"tokenization_key": adapter.tokenization_key, "ccnumber": "4111111111111111", "ccexp": "12/30"}
            token = await http.post(f"http://{host_of(MERCHANT)}/sandbox-gateway/tokenize", json={**body, "cvv": "123"})
            await methods.attach(platform.gateways, tenant, customer, token.json()["token"], make_default=True)
            async with tenant_transaction(tenant.merchant.iso_id):
                for price in prices:
                    await subscriptions.create(
                        tenant, customer_id=customer.id, price_id=price.id, now=now - timedelta(days=3), actor=SYSTEM
                    )
            for n in range(count):
                at = now - timedelta(days=count - n)
                line = LineInput(description=f"Order {n}", quantity=1, unit_amount=1000 + 37 * n)
                async with tenant_transaction(tenant.merchant.iso_id):
                    draft = await invoices.create(
                        tenant, customer_id=customer.id, currency="USD", lines=[line], due_at=at + timedelta(days=30),
                        now=at, actor=SYSTEM,
                    )  # fmt: skip
                    made = await invoices.finalize(tenant, draft.id, now=at, actor=SYSTEM)
                if n % 3 == 0:
                    await charges.pay_invoice(platform, tenant, made.id, now=at, actor=SYSTEM)


async def seed_reference(database_url: str) -> None:
    """The reference's 200,000-row table, seeded by its own script."""
    env = {**os.environ, "REF_DSN": database_url}
    process = await asyncio.create_subprocess_exec(sys.executable, str(REFERENCE), "seed", env=env)
    if await process.wait() != 0:
        raise RuntimeError("seeding the reference table failed")


@asynccontextmanager
async def reference_serve(database_url: str, port: int) -> AsyncIterator[None]:
    """``uvicorn ref_app:app`` (one worker, no access log) in its own process."""
    env = {**os.environ, "REF_DSN": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "ref_app:app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log", cwd=str(REFERENCE.parent), env=env,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                try:
                    if (await client.get("/plain")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise TimeoutError("the reference did not answer")
        yield
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=30)


async def run(database_url: str, connections: int, duration: float, warmup: float, rounds: int, count: int) -> None:
    """Create the database, set up, count statements, measure in alternation, report, drop the database."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log_statements()
    async with bench_platform(database_url) as (platform, _merchant):
        with tempfile.TemporaryDirectory() as folder:
            await apply_tenants(platform, tenant_file(), Path(folder))
        await history(platform)
        visitors = {n: await signed_in(platform, MERCHANT, email_for(n)) for n in COUNTS}
        dsn = platform.settings.database_url or ""
        await seed_reference(dsn)

        log = StatementLog(create_app(platform, manage_platform=False))
        port = free_port()
        found: list[StatementCount] = []
        async with serve_here(log, port), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            page = await http.get("/", headers=visitors[12].headers)
            assert page.status_code == 200 and "Recent activity" in page.text and "Paid YTD" in page.text
            for n, visitor in visitors.items():
                statements, varied = await count_statements(http, log, visitor, "/")
                found.append(StatementCount("GET /", str(n), statements, varied))

        results: list[Series] = []
        portal_port, reference_port = free_port(), free_port()
        async with portal_serve(dsn, portal_port), reference_serve(dsn, reference_port):
            with tempfile.TemporaryDirectory() as folder:
                script = Path(folder) / "bench.lua"
                script.write_text(WRK_SCRIPT, encoding="utf-8")
                for _ in range(rounds):
                    for name, url, visitor in (
                        ("reference", f"http://127.0.0.1:{reference_port}/", Visitor("127.0.0.1")),
                        (f"overview ({count})", f"http://127.0.0.1:{portal_port}/", visitors[count]),
                    ):
                        results.append(await wrk_series(name, wrk, script, url, visitor, connections, duration, warmup))

    say("SQL statements per GET / (queries; all statements including BEGIN/COMMIT, tenant scope, pool reset)")
    say(f"{'invoices':>8} {'queries':>8} {'statements':>11}")
    for c in found:
        flag = "  (varied between requests; most common shown)" if c.varied else ""
        say(f"{c.cards:>8} {c.queries:>8} {len(c.statements):>11}{flag}")
    say("statements of one GET / (500 invoices):")
    for statement in found[-1].statements:
        say(f"  [{kind(statement)}] {statement[:150]}")
    say("")
    say(f"wrk -t1 -c{connections}, {duration:g} s per series after {warmup:g} s warm-up, in alternation")
    say_series(results, 20)
    ratios = [portal.rate / ref.rate for ref, portal in zip(results[::2], results[1::2], strict=True)]
    say("ratio per round: " + ", ".join(f"{r:.2f}" for r in ratios) + f"; median {statistics.median(ratios):.2f}")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10, help="seconds per series")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per series")
    parser.add_argument("--rounds", type=int, default=3, help="reference/portal pairs")
    parser.add_argument("--invoices", type=int, choices=COUNTS, default=12, help="the customer measured under load")
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.connections, args.duration, args.warmup, args.rounds, args.invoices))


if __name__ == "__main__":
    main()
