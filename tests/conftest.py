"""Shared fixtures: the platform under test with the test plugins and the shared tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import support.card_required_plugin
import support.child_theme
import support.example_plugin
import support.example_theme
from portal.platform import Platform
from portal.tenancy.files import apply_tenant_file, load_tenant_file
from support.nmi_server import NmiServer

pytest_plugins = ["portal.testing"]

SUPPORT = Path(__file__).parent / "support"


@pytest.fixture(scope="session")
def portal_plugins() -> list[tuple[str, object]]:
    return [
        ("example", support.example_plugin),
        ("theme-harbor", support.example_theme),
        ("theme-harbor-night", support.child_theme),
        ("card-required", support.card_required_plugin),
    ]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_tenants(portal_platform: Platform) -> Platform:
    """The tenants of ``tests/support/tenants.toml``, applied once per test process."""
    spec = load_tenant_file(SUPPORT / "tenants.toml", portal_platform.registry, portal_platform.settings.base_domain)
    await apply_tenant_file(spec, portal_platform.registry)
    portal_platform.tenants.invalidate()
    return portal_platform


@pytest_asyncio.fixture(loop_scope="session")
async def nmi() -> AsyncIterator[NmiServer]:
    """A local server speaking NMI's documented API (the one third-party service tests fake)."""
    server = NmiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
