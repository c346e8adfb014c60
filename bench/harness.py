"""Shared by the benchmarks: a fresh, migrated database with one merchant, dropped afterwards."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from portal.config import Settings
from portal.db.engine import fetch, system_transaction, with_database
from portal.platform import Platform
from portal.tenancy.files import apply_tenant_file, load_tenant_file
from portal.tenancy.models import MerchantView

TENANTS = """
[[isos]]
slug = "bench-iso"
name = "Bench ISO"

[[isos.merchants]]
slug = "bench"
name = "Bench Merchant"
"""


@asynccontextmanager
async def bench_platform(database_url: str, **settings: Any) -> AsyncIterator[tuple[Platform, MerchantView]]:
    """A started platform on a new database holding the merchant ``bench``."""
    name = f"portal_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    platform: Platform | None = None
    try:
        config = Settings(database_url=with_database(database_url, name), base_domain="bench.localhost", **settings)
        platform = Platform(config)
        await platform.migrate()
        await platform.start()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "tenants.toml"
            path.write_text(TENANTS, encoding="utf-8")
            await apply_tenant_file(load_tenant_file(path, platform.registry, config.base_domain), platform.registry)
        async with system_transaction():
            found = await fetch("SELECT * FROM portal_locate_merchant($1)", "bench")
        tenant = await platform.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
        assert tenant is not None
        yield platform, tenant.merchant
    finally:
        if platform is not None:
            await platform.stop()
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
