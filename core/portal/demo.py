"""``portal demo``: everything in one process, with signed links for the demo customers."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click
import msgspec
import uvicorn

from portal.access.links import issue_link
from portal.config import Settings
from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.mail import MailCatcher
from portal.platform import Platform
from portal.tasks.worker import run_worker
from portal.tenancy.files import TenantFile, apply_tenant_file, load_tenant_file
from portal.web.app import create_app

log = logging.getLogger(__name__)


async def demo_links(platform: Platform, spec: TenantFile) -> list[tuple[str, str, str]]:
    """(merchant, customer email, signed link) for every customer in the demo file."""
    links: list[tuple[str, str, str]] = []
    for iso in spec.isos:
        async with system_transaction():
            rows = await fetch("SELECT portal_iso_id_for_slug($1) AS id", iso.slug)
        iso_id = rows[0]["id"]
        async with tenant_transaction(iso_id):
            customers = await fetch(
                """
                SELECT m.id AS merchant_id, m.name, c.id, c.email FROM portal_customer c
                  JOIN portal_merchant m ON m.id = c.merchant_id
                 WHERE m.slug = ANY($1::text[]) ORDER BY m.slug, c.email
                """,
                [m.slug for m in iso.merchants],
            )
        for row in customers:
            tenant = await platform.tenants.load_merchant(iso_id, row["merchant_id"])
            if tenant is None:
                continue
            async with tenant_transaction(iso_id):
                link = await issue_link(platform.settings, tenant, row["id"], source="operator")
            links.append((f"{row['name']} ({iso.name})", row["email"], link.url))
    return links


async def run_demo(settings: Settings, tenants_file: Path) -> None:
    """Migrate, apply the demo tenants, print links, then serve and work until interrupted."""
    catcher = MailCatcher()
    smtp_port = await catcher.start()
    settings = msgspec.structs.replace(
        settings,
        public_scheme="http",
        public_port=settings.port,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
        mail_from=f"portal@{settings.base_domain}",
        webhook_allow_private=True,  # the demo's webhook receivers run on this machine
    )
    platform = Platform(settings)
    platform.mail_catcher = catcher
    spec = load_tenant_file(tenants_file, platform.registry, settings.base_domain)
    try:
        await platform.migrate()
        await platform.start(worker=True)
        changes = await apply_tenant_file(spec, platform.registry, source=str(tenants_file))
        log.info("demo tenants: %s change(s)", len(changes))
        links = await demo_links(platform, spec)
        click.echo(f"\nPortal demo on http://<merchant>.{settings.base_domain}:{settings.port}/\n")
        click.echo("Signed links (each works once; ask for a new one at /login, mail shows at /-/mail):\n")
        for merchant, email, url in links:
            click.echo(f"  {merchant:<48} {email}\n    {url}\n")
        click.echo(f"Caught mail: http://<any merchant>.{settings.base_domain}:{settings.port}/-/mail  Ctrl+C stops.\n")
        app = create_app(platform, manage_platform=False)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                lifespan="on",
                log_config=None,
            )
        )
        worker = asyncio.create_task(run_worker(platform))
        try:
            await server.serve()
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
    finally:
        await platform.stop()
        await catcher.stop()
