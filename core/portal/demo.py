"""``portal demo``: everything in one process, with links to the demo customers' portals."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click
import uvicorn

from portal.config import Settings
from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.platform import Platform
from portal.tasks.worker import run_worker, start_broker
from portal.tenancy.files import TenantFile, apply_tenant_file, load_tenant_file
from portal.web.app import create_app

log = logging.getLogger(__name__)


async def demo_links(spec: TenantFile, settings: Settings) -> list[tuple[str, str, str]]:
    """(merchant name, customer email, sign-in URL) for every customer in the demo file."""
    links: list[tuple[str, str, str]] = []
    for iso in spec.isos:
        async with system_transaction():
            rows = await fetch("SELECT portal_iso_id_for_slug($1) AS id", iso.slug)
        async with tenant_transaction(rows[0]["id"]):
            customers = await fetch(
                """
                SELECT m.slug, m.name, c.id, c.email FROM portal_customer c
                  JOIN portal_merchant m ON m.id = c.merchant_id
                 WHERE m.slug = ANY($1::text[]) ORDER BY m.slug, c.email
                """,
                [m.slug for m in iso.merchants],
            )
        for row in customers:
            url = f"http://{row['slug']}.{settings.base_domain}:{settings.port}/-/demo/sign-in/{row['id']}"
            links.append((f"{row['name']} ({iso.name})", row["email"], url))
    return links


async def run_demo(settings: Settings, tenants_file: Path) -> None:
    """Migrate, apply the demo tenants, print links, then serve and work until interrupted."""
    platform = Platform(settings)
    spec = load_tenant_file(tenants_file, platform.registry, settings.base_domain)
    try:
        await platform.migrate()
        await platform.start()
        changes = await apply_tenant_file(spec, platform.registry, source=str(tenants_file))
        log.info("demo tenants: %s change(s)", len(changes))
        links = await demo_links(spec, settings)
        broker = await start_broker(platform)
        click.echo(f"\nPortal demo on http://<merchant>.{settings.base_domain}:{settings.port}/\n")
        for merchant, email, url in links:
            click.echo(f"  {merchant:<45} {email:<22} {url}")
        click.echo("\nOpen a link in Chromium or Firefox (*.localhost resolves to this machine). Ctrl+C stops.\n")
        app = create_app(platform, manage_platform=False)
        server = uvicorn.Server(
            uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level, lifespan="on")
        )
        worker = asyncio.create_task(run_worker(platform, broker))
        try:
            await server.serve()
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            await broker.shutdown()
    finally:
        await platform.stop()
