"""Billing ledger fixtures: merchants on the sandbox gateway in two time zones, customers and cards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import pytest_asyncio

from portal.platform import Platform
from portal.testing import BASE_DOMAIN, ClientFactory, apply_tenants
from support.billing import AUCKLAND, NEW_YORK, TENANTS, Ledger


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def billing_platform(portal_platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The platform with this package's merchants."""
    await apply_tenants(portal_platform, TENANTS, tmp_path_factory.mktemp("billing"))
    return portal_platform


@pytest_asyncio.fixture(loop_scope="session")
async def ledger_for(billing_platform: Platform, portal_client: ClientFactory) -> Callable[[str], Awaitable[Ledger]]:
    """Make a :class:`Ledger` for one of this package's merchants by slug."""

    async def make(slug: str) -> Ledger:
        tenant = await billing_platform.tenants.resolve(f"{slug}.{BASE_DOMAIN}")
        assert tenant is not None
        return Ledger(billing_platform, tenant, portal_client(f"{slug}.{BASE_DOMAIN}"))

    return make


@pytest_asyncio.fixture(loop_scope="session")
async def ny(ledger_for: Callable[[str], Awaitable[Ledger]]) -> Ledger:
    """The New York merchant."""
    return await ledger_for(NEW_YORK)


@pytest_asyncio.fixture(loop_scope="session")
async def auckland(ledger_for: Callable[[str], Awaitable[Ledger]]) -> Ledger:
    """The Auckland merchant."""
    return await ledger_for(AUCKLAND)
