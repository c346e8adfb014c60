"""The merchant switch's header line: SQL statements per page, by how many merchants the customer has.

Sets up, on a fresh database, one ISO with 21 merchants where the merchant switch is on and one
where it is off, and customers whose email is at 1, 2, 6 and 21 of them. Then counts the SQL
statements of ``GET /invoices`` (a page whose own work does not depend on the switch) for each:

- ``cold``: the header line's per-process cache has no entry (the first page, or after its TTL);
- ``warm``: the next page, within the TTL;
- ``off``: the same customer's page at the merchant without the switch, the reference.

Prints queries (statements that read or write data) and all statements per request.

    uv run python bench/switch_header.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import tempfile
from pathlib import Path

import httpx
from cards_pages import StatementLog, kind, log_statements
from harness import BASE_DOMAIN, bench_platform, say

from portal.testing import apply_tenants, sign_in
from portal.web.app import create_app
from portal_merchant_switch import header

MERCHANTS = 21
SPREADS = (1, 2, 6, 21)
"""How many switch-on merchants each measured customer has a record at."""


def email_for(spread: int) -> str:
    """The email of the customer with records at ``spread`` switch-on merchants."""
    return f"jane-{spread}@example.com"


def tenant_file() -> str:
    """The ISO: merchants ``sw0`` to ``sw20`` with the switch on, ``sw21`` without."""
    text = '[[isos]]\nslug = "switch-iso"\nname = "Switch ISO"\n\n'
    for index in range(MERCHANTS + 1):
        on = index < MERCHANTS
        text += f'[[isos.merchants]]\nslug = "sw{index}"\nname = "Merchant {index}"\n'
        text += "[isos.merchants.plugins.invoices]\n"
        text += "[isos.merchants.plugins.merchant_switch]\n" if on else ""
        for spread in SPREADS:
            if index < spread or not on:
                text += f'[[isos.merchants.customers]]\nemail = "{email_for(spread)}"\n'
        text += "\n"
    return text


async def statements(log: StatementLog, client: httpx.AsyncClient, path: str) -> list[str]:
    """The statements one ``GET path`` ran."""
    key = secrets.token_hex(6)
    page = await client.get(path, headers={"x-bench-id": key})
    assert page.status_code == 200, page.text
    return await log.of(key)


def queries(found: list[str]) -> int:
    """How many of ``found`` read or write data."""
    return sum(1 for s in found if kind(s) == "query")


async def run(database_url: str) -> None:
    """Create the database, set up, count, report, drop the database."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log_statements()
    async with bench_platform(database_url) as (platform, _merchant):
        with tempfile.TemporaryDirectory() as folder:
            await apply_tenants(platform, tenant_file(), Path(folder))
        log = StatementLog(create_app(platform, manage_platform=False))
        transport = httpx.ASGITransport(app=log)  # type: ignore[arg-type]
        rows = []
        for spread in SPREADS:
            on = httpx.AsyncClient(transport=transport, base_url=f"https://sw0.{BASE_DOMAIN}")
            off = httpx.AsyncClient(transport=transport, base_url=f"https://sw{MERCHANTS}.{BASE_DOMAIN}")
            await sign_in(platform, on, email_for(spread))
            await sign_in(platform, off, email_for(spread))
            header.forget()
            cold = await statements(log, on, "/invoices")
            warm = await statements(log, on, "/invoices")
            reference = await statements(log, off, "/invoices")
            line = (await on.get("/invoices")).text
            shown = f"accounts at {spread - 1} other" in line if spread > 1 else "You have accounts" not in line
            assert shown, f"header line wrong for {spread}"
            rows.append((spread, cold, warm, reference))
            await on.aclose()
            await off.aclose()

    say("SQL statements per GET /invoices: queries / all statements (BEGIN/COMMIT, tenant scope included)")
    say(f"{'merchants':>9} {'cold':>9} {'warm':>9} {'off':>9}")
    for spread, cold, warm, reference in rows:
        cells = [f"{queries(s)} / {len(s)}" for s in (cold, warm, reference)]
        say(f"{spread:>9} {cells[0]:>9} {cells[1]:>9} {cells[2]:>9}")
    extra = [s for s in rows[-1][1] if s not in rows[-1][2]]
    say("statements the cold page adds to the reference (21 merchants):")
    for statement in extra:
        say(f"  [{kind(statement)}] {statement[:150]}")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    asyncio.run(run(args.database_url))


if __name__ == "__main__":
    main()
