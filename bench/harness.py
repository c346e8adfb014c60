"""Shared by the benchmarks: a fresh, migrated database with one merchant (dropped afterwards) and report helpers."""

from __future__ import annotations

import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from portal.config import Settings
from portal.db.engine import fetch, system_transaction
from portal.events import bus
from portal.platform import Platform
from portal.tenancy.models import MerchantView
from portal.testing import apply_tenants, scratch_database

BASE_DOMAIN = "bench.localhost"
"""The base domain of the benchmark platform: merchant hosts are ``<slug>.bench.localhost``."""

TENANTS = """
[[isos]]
slug = "bench-iso"
name = "Bench ISO"

[[isos.merchants]]
slug = "bench"
name = "Bench Merchant"
"""


def say(line: str) -> None:
    """Write one line of the report (at once: progress lines of long runs show as they come)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _no_kick() -> None:
    return None


@contextmanager
def no_worker_kick() -> Iterator[None]:
    """Stub out the after-commit worker kick (``portal.events.bus.kick_worker``) inside the block."""
    real_kick = bus.kick_worker
    bus.kick_worker = _no_kick  # type: ignore[assignment]
    try:
        yield
    finally:
        bus.kick_worker = real_kick  # type: ignore[assignment]


@asynccontextmanager
async def bench_platform(database_url: str, **settings: Any) -> AsyncIterator[tuple[Platform, MerchantView]]:
    """A started platform on a new database holding the merchant ``bench``."""
    async with scratch_database(database_url, "portal_bench_") as dsn:
        platform: Platform | None = None
        try:
            config = Settings(database_url=dsn, base_domain=BASE_DOMAIN, **settings)
            platform = Platform(config)
            await platform.migrate()
            await platform.start()
            with tempfile.TemporaryDirectory() as folder:
                await apply_tenants(platform, TENANTS, Path(folder))
            async with system_transaction():
                found = await fetch("SELECT * FROM portal_locate_merchant($1)", "bench")
            tenant = await platform.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
            assert tenant is not None
            yield platform, tenant.merchant
        finally:
            if platform is not None:
                await platform.stop()
