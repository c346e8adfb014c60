import asyncio

import click

from portal.sdk import (
    CliCommand,
    Platform,
    fetch,
    hookimpl,
    load_settings,
    system_transaction,
    tenant_transaction,
)


@click.command("loyalty-total")
@click.argument("merchant_slug")
def loyalty_total(merchant_slug: str) -> None:
    """Print the points held by a merchant's customers."""

    async def go() -> int:
        platform = Platform(load_settings())
        await platform.start()
        try:
            async with system_transaction():
                found = await fetch("SELECT * FROM portal_locate_merchant($1)", merchant_slug)
            if not found:
                raise click.ClickException(f"no merchant with slug {merchant_slug!r}")
            async with tenant_transaction(found[0]["iso_id"]):
                rows = await fetch(
                    "SELECT coalesce(sum(points), 0) AS total FROM loyalty_account WHERE merchant_id = $1",
                    found[0]["merchant_id"],
                )
            return rows[0]["total"]
        finally:
            await platform.stop()

    click.echo(asyncio.run(go()))


@hookimpl
def portal_cli_commands() -> list[CliCommand]:
    return [CliCommand(command=loyalty_total)]
