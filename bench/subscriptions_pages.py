"""Subscription pages: SQL statements per request for 1, 5 and 50 subscriptions, and their speed under load.

Sets up, on a fresh database, a merchant with the subscriptions plugin and the sandbox gateway and
three customers with 1, 5 and 50 subscriptions (made with the ledger's ``subscriptions.create``,
each with its first invoice, on five products), then:

- counts the SQL statements one request runs, on the app served in this process with a statement
  log around asyncpg (``GET /subscriptions``, ``GET /`` with the widget, and ``GET /subscriptions/<id>``),
  as ``bench/cards_pages.py`` counts the card pages;
- serves the app with ``portal serve`` (uvicorn) in its own process and drives the list page of the
  customers with 5 and 50 subscriptions over keep-alive HTTP/1.1 with ``--connections`` clients
  (wrk when installed, else httpx), each series for ``--duration`` seconds after ``--warmup`` seconds,
  with the Overview of a customer at a merchant without the plugin as the reference.

    uv run python bench/subscriptions_pages.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
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

from portal.billing import catalog, subscriptions
from portal.db.engine import tenant_transaction
from portal.events.bus import SYSTEM
from portal.platform import Platform
from portal.testing import apply_tenants, customer_id
from portal.web.app import create_app

ISO = "bench-subs-iso"
MERCHANT = "bench-subs"
PLAIN = "bench-subs-off"
"""The reference: a merchant without the plugin, whose Overview has the same frame and no widget."""
COUNTS = (1, 5, 50)
PRODUCTS = ("Bread Box", "Coffee Club", "Office Breakfast", "Flower Delivery", "Wine Club")


def email_for(count: int) -> str:
    """The customer who has ``count`` subscriptions."""
    return f"subs{count}@example.com"


def tenant_file() -> str:
    """The merchant and its customers, as a tenant file."""
    customers = "".join(f'[[isos.merchants.customers]]\nemail = "{email_for(n)}"\nname = "Sam Sub"\n' for n in COUNTS)
    return (
        f'[[isos]]\nslug = "{ISO}"\nname = "Bench ISO"\n\n'
        f'[[isos.merchants]]\nslug = "{MERCHANT}"\nname = "Bench Subscriptions"\n'
        '[isos.merchants.gateway]\nkey = "sandbox"\n'
        "[isos.merchants.plugins.subscriptions]\n"
        "settings = { allow_quantity_change = true }\n" + customers + "\n"
        f'[[isos.merchants]]\nslug = "{PLAIN}"\nname = "Bench Plain"\n'
        '[isos.merchants.gateway]\nkey = "sandbox"\n'
        f'[[isos.merchants.customers]]\nemail = "{email_for(5)}"\nname = "Sam Sub"\n'
    )


async def subscribe_all(platform: Platform) -> dict[int, str]:
    """Give each customer its subscriptions; return one subscription id per customer."""
    tenant = await platform.tenants.resolve(host_of(MERCHANT))
    assert tenant is not None
    now = datetime.now(UTC)
    one: dict[int, str] = {}
    async with tenant_transaction(tenant.merchant.iso_id):
        prices = []
        for index, name in enumerate(PRODUCTS):
            product = await catalog.create_product(tenant, name=name, actor=SYSTEM)
            price = await catalog.create_price(
                tenant, product_id=product.id, currency="USD", unit_amount=1900 + 1000 * index, interval="month",
                actor=SYSTEM,
            )  # fmt: skip
            prices.append(price)
    for count in COUNTS:
        customer = await customer_id(MERCHANT, email_for(count))
        for n in range(count):
            async with tenant_transaction(tenant.merchant.iso_id):
                made = await subscriptions.create(
                    tenant, customer_id=customer, price_id=prices[n % len(prices)].id, quantity=1 + n % 3,
                    now=now - timedelta(days=n % 28), actor=SYSTEM,
                )  # fmt: skip
            one.setdefault(count, made.id)
    return one


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
        one = await subscribe_all(platform)
        visitors = {n: await signed_in(platform, MERCHANT, email_for(n)) for n in COUNTS}
        plain = await signed_in(platform, PLAIN, email_for(5))

        log = StatementLog(create_app(platform, manage_platform=False))
        port = free_port()
        found: list[StatementCount] = []
        async with serve_here(log, port), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for n, visitor in visitors.items():
                listed = await http.get("/subscriptions", headers=visitor.headers)
                assert listed.status_code == 200 and listed.text.count('class="card sub-item"') == n
            pages: list[tuple[str, int, Visitor, str]] = [
                *(("GET /subscriptions", n, v, "/subscriptions") for n, v in visitors.items()),
                *(("GET /", n, v, "/") for n, v in visitors.items()),
                *(("GET /subscriptions/<id>", n, v, f"/subscriptions/{one[n]}") for n, v in visitors.items()),
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
                    ("subscriptions list (5)", visitors[5], "/subscriptions"),
                    ("subscriptions list (50)", visitors[50], "/subscriptions"),
                    ("overview with widget (5)", visitors[5], "/"),
                    ("overview, plugin off (reference)", plain, "/"),
                ):
                    url = f"http://127.0.0.1:{port}{path}"
                    if wrk is not None:
                        result = await wrk_series(name, wrk, script, url, visitor, connections, duration, warmup)
                    else:
                        result = await httpx_series(name, url, visitor, connections, duration, warmup)
                    results.append(result)

    say("SQL statements per request (queries; all statements including BEGIN/COMMIT, tenant scope, pool reset)")
    say(f"{'page':<26} {'subscriptions':>13} {'queries':>8} {'statements':>11}")
    for count in found:
        flag = "  (varied between requests; most common shown)" if count.varied else ""
        say(f"{count.page:<26} {count.cards:>13} {count.queries:>8} {len(count.statements):>11}{flag}")
    say_constancy(found, ("GET /subscriptions", "GET /", "GET /subscriptions/<id>"), COUNTS, "subscriptions")
    say("")
    say("statements of one GET /subscriptions (50 subscriptions):")
    for statement in next(c for c in found if c.page == "GET /subscriptions" and c.cards == "50").statements:
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
