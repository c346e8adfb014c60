"""The merchant switch's test world: one ISO with three merchants where switching is on, one where it
is off, one whose switching is turned off and one that gets suspended by a test, and another ISO.

Applied once per test process (``msw-*-<run>`` slugs). Each test makes its own customers with an
email of its own (:meth:`World.person`), so tests run in any order.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from portal.db.engine import fetch, tenant_transaction
from portal.ids import new_id
from portal.platform import Platform
from portal.tenancy.models import Tenant
from portal.testing import apply_tenants, sign_in
from portal_merchant_switch import header

RUN = f"{os.getpid():x}"
GREENFIELD, PINNACLE, APEX, OFF, TOGGLED, DOOMED, LEAVING, FAR = (
    f"msw-{name}-{RUN}" for name in ("greenfield", "pinnacle", "apex", "off", "toggled", "doomed", "leaving", "far")
)
SWITCH_ON = (GREENFIELD, PINNACLE, APEX, TOGGLED, DOOMED, LEAVING)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NAMES = {
    GREENFIELD: "Greenfield Bakery",
    PINNACLE: "Pinnacle SaaS Inc.",
    APEX: "Apex Auto Parts",
    OFF: "Switch Off Shop",
    TOGGLED: "Toggled Tools",
    DOOMED: "Doomed Deli",
    LEAVING: "Leaving Lamps",
    FAR: "Northwind Outfitters",
}


def tenant_file() -> str:
    colors = iter(["#2e7d32", "#5b21b6", "#c2410c", "#0f4c81", "#7c2d12", "#334155", "#9d174d", "#0f4c81"])
    text = f'[[isos]]\nslug = "msw-iso-{RUN}"\nname = "Harbor Payments (switch)"\n\n'
    for slug in (GREENFIELD, PINNACLE, APEX, OFF, TOGGLED, DOOMED, LEAVING):
        text += f'[[isos.merchants]]\nslug = "{slug}"\nname = "{NAMES[slug]}"\n'
        text += f'[isos.merchants.brand]\ncolor = "{next(colors)}"\n'
        text += "[isos.merchants.plugins.subscriptions]\n[isos.merchants.plugins.invoices]\n"
        if slug == LEAVING:
            text += "[isos.merchants.plugins.merchant_switch]\nsettings = { end_session_on_switch = true }\n"
        elif slug != OFF:
            text += "[isos.merchants.plugins.merchant_switch]\n"
        text += "\n"
    text += f'[[isos]]\nslug = "msw-far-iso-{RUN}"\nname = "Summit Merchant Services (switch)"\n\n'
    text += f'[[isos.merchants]]\nslug = "{FAR}"\nname = "{NAMES[FAR]}"\n[isos.merchants.plugins.merchant_switch]\n'
    return text


def host(slug: str) -> str:
    return f"{slug}.portal.localhost"


@dataclass
class Account:
    """A customer record at one merchant, with a client signed in as them there."""

    slug: str
    customer_id: str
    client: httpx.AsyncClient

    async def csrf(self, path: str = "/switch") -> str:
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    async def switch(self, target: Tenant) -> httpx.Response:
        """``POST /switch/{id}`` with the page's CSRF token."""
        return await self.client.post(f"/switch/{target.merchant.id}", data={"csrf_token": await self.csrf()})


@dataclass
class World:
    """The merchants by slug, and a way to make a person with records at several of them."""

    platform: Platform
    client_for: Callable[[str], httpx.AsyncClient] | None = None
    tenants: dict[str, Tenant] = field(default_factory=dict)

    async def person(self, *slugs: str, email: str | None = None) -> dict[str, Account]:
        """A fresh email with a customer record at each merchant of ``slugs``, signed in at each."""
        assert self.client_for is not None
        email = email or f"s-{secrets.token_hex(5)}@example.com"
        made = {}
        for slug in slugs:
            merchant = self.tenants[slug].merchant
            cid = new_id("cus")
            async with tenant_transaction(merchant.iso_id):
                await fetch(
                    "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
                    "VALUES ($1, $2, $3, $4::text, lower($4::text), 'Jane Cooper')",
                    cid,
                    merchant.iso_id,
                    merchant.id,
                    email,
                )
            client = self.client_for(host(slug))
            await sign_in(self.platform, client, email)
            made[slug] = Account(slug, cid, client)
        return made

    async def land(self, slug: str, response: httpx.Response) -> httpx.Response:
        """Open the link a switch redirected to, on ``slug``'s host, with a fresh client."""
        assert self.client_for is not None
        assert response.status_code == 303, response.text
        location = urlsplit(response.headers["location"])
        assert location.path.startswith("/access/")
        return await self.client_for(host(slug)).get(location.path)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def switch_world(shared_tenants: Platform, tmp_path_factory: Any) -> World:
    folder: Path = tmp_path_factory.mktemp("switch-tenants")
    await apply_tenants(shared_tenants, tenant_file(), folder)
    made = World(shared_tenants)
    for slug in NAMES:
        tenant = await shared_tenants.tenants.resolve(host(slug))
        assert tenant is not None
        made.tenants[slug] = tenant
    return made


@pytest.fixture
def world(switch_world: World, portal_client: Callable[[str], httpx.AsyncClient]) -> World:
    """The world, with clients of this test; the header cache starts empty."""
    header.forget()
    switch_world.client_for = portal_client
    return switch_world
