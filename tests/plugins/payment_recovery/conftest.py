"""Payment recovery tests: each test gets a merchant of its own (``shop``), so clocks and cases never mix."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from portal.mail import MailCatcher
from portal.platform import Platform
from portal.testing import ClientFactory
from support.recovery import Shop, make_shop


@pytest_asyncio.fixture(loop_scope="session")
async def make(
    portal_platform: Platform, portal_mail: MailCatcher, portal_client: ClientFactory, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Shop]]]:
    """``await make(recovery=...)``: a fresh merchant with those recovery settings (``None``: off).

    The shops' queued work (a receipt, a link-opened note) is run before the test ends, so no
    other test's worker finds it due.
    """
    shops: list[Shop] = []

    async def build(**options: Any) -> Shop:
        shop = await make_shop(portal_platform, portal_mail, portal_client, tmp_path, **options)
        shops.append(shop)
        return shop

    yield build
    for shop in shops:
        await shop.work()


@pytest_asyncio.fixture(loop_scope="session")
async def shop(make: Callable[..., Awaitable[Shop]]) -> Shop:
    """A fresh merchant with payment recovery on, default settings."""
    return await make()


@pytest.fixture
def csrf_of() -> Callable[[str], str]:
    import re

    pattern = re.compile(r'name="csrf_token" value="([^"]+)"')

    def find(html: str) -> str:
        found = pattern.search(html)
        assert found, "no CSRF token on the page"
        return found.group(1)

    return find
