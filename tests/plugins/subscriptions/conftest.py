"""The subscriptions plugin's test world: merchants with different permissions, their prices and customers.

Applied once per test process with a tenant file of its own (``subs-*-<run>`` slugs), then again
with the main merchant's ``plan_change_prices`` once its prices exist. Each test makes fresh
customers and subscriptions (:meth:`World.shopper`), so tests run in any order.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from portal.billing import catalog, subscriptions
from portal.billing.models import Price, Subscription
from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import Actor
from portal.ids import new_id
from portal.payments import methods
from portal.payments.sandbox import SandboxAdapter
from portal.platform import Platform
from portal.tenancy.models import CustomerView, Tenant
from portal.testing import apply_tenants, sign_in

RUN = f"{os.getpid():x}"  # the same whichever way this module is imported (conftest, or by name)
MAIN, RESTRICTED, PARTIAL, DEFAULTS, OFF, SIBLING, FAR = (
    f"subs-{name}-{RUN}" for name in ("main", "restricted", "partial", "defaults", "off", "sibling", "far")
)
MERCHANT_ACTOR = Actor(type="merchant_api_key", id="key_subscription_tests")
FUTURE = f"12 / {(datetime.now(UTC).year + 3) % 100:02d}"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def tenant_file(plan_change_prices: list[str]) -> str:
    prices = ", ".join(f'"{price}"' for price in plan_change_prices)
    main_settings = (
        f"allow_plan_change = {'true' if prices else 'false'}, plan_change_prices = [{prices}], "
        'allow_quantity_change = true, quantity_max = 5, cancel_mode = "both"'
    )
    merchants = [
        (MAIN, "Greenfield Test", f"settings = {{ {main_settings} }}"),
        (
            RESTRICTED,
            "Locked Down",
            "settings = { allow_pause = false, allow_cancel = false, allow_quantity_change = false }",
        ),
        (
            PARTIAL,
            "Partial",
            'settings = { cancel_mode = "immediately", allow_quantity_change = true, quantity_max = 3, '
            'pause_durations = [1], pause_reasons = ["Travelling"], cancel_reasons = ["other"], '
            "downgrades_at_period_end = true }",
        ),
        (DEFAULTS, "Defaults", ""),
        (OFF, "Plugin Off", None),
        (SIBLING, "Sibling", 'settings = { allow_quantity_change = true, proration_behavior = "create_prorations" }'),
    ]
    text = f'[[isos]]\nslug = "subs-iso-{RUN}"\nname = "Subscriptions ISO"\n\n'
    for slug, name, settings in merchants:
        text += f'[[isos.merchants]]\nslug = "{slug}"\nname = "{name}"\ntimezone = "America/New_York"\n'
        text += 'locale = "en-US"\n[isos.merchants.brand]\ncolor = "#2e7d32"\nsupport_email = "help@example.test"\n'
        text += '[isos.merchants.gateway]\nkey = "sandbox"\n[isos.merchants.plugins.cards]\n'
        if settings is not None:
            text += f"[isos.merchants.plugins.subscriptions]\n{settings}\n"
        text += "\n"
    text += f'[[isos]]\nslug = "subs-far-iso-{RUN}"\nname = "Far ISO"\n\n'
    text += f'[[isos.merchants]]\nslug = "{FAR}"\nname = "Far Away"\n[isos.merchants.gateway]\nkey = "sandbox"\n'
    text += "[isos.merchants.plugins.subscriptions]\n"
    return text


def host(slug: str) -> str:
    return f"{slug}.portal.localhost"


@dataclass
class Shopper:
    """A customer signed in on one merchant host, with the page helpers tests need."""

    world: World
    slug: str
    customer: CustomerView
    client: httpx.AsyncClient

    @property
    def tenant(self) -> Tenant:
        return self.world.tenants[self.slug]

    async def csrf(self, path: str = "/subscriptions") -> str:
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    async def post(self, path: str, **data: str) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": await self.csrf(), **data})

    async def card(self, number: str = "4111111111111111") -> methods.PaymentMethod:
        """Put a sandbox test card on file as the default, through the sandbox's tokenizer."""
        adapter = self.world.platform.gateways.for_tenant(self.tenant)
        assert isinstance(adapter, SandboxAdapter)
        body = {"tokenization_key": adapter.tokenization_key, "ccnumber": number, "ccexp": FUTURE, "cvv": "123"}
        response = await self.client.post("/sandbox-gateway/tokenize", json=body)
        assert response.status_code == 200, response.text
        attached = await methods.attach(
            self.world.platform.gateways, self.tenant, self.customer, str(response.json()["token"]), make_default=True
        )
        return attached.method

    async def subscribe(self, price: Price, *, quantity: int = 1, now: datetime | None = None) -> Subscription:
        async with tenant_transaction(self.tenant.merchant.iso_id):
            return await subscriptions.create(
                self.tenant, customer_id=self.customer.id, price_id=price.id, quantity=quantity,
                now=now or datetime.now(UTC), actor=MERCHANT_ACTOR,
            )  # fmt: skip

    async def subscription(self, sub_id: str) -> Subscription:
        async with tenant_transaction(self.tenant.merchant.iso_id):
            return await subscriptions.get(self.tenant, sub_id)


@dataclass
class World:
    """The merchants (by slug), their prices (by merchant and name) and a way to make shoppers."""

    platform: Platform
    tenants: dict[str, Tenant] = field(default_factory=dict)
    prices: dict[str, dict[str, Price]] = field(default_factory=dict)

    async def shopper(
        self, client_for: Callable[[str], httpx.AsyncClient], slug: str = MAIN, email: str | None = None,
        name: str = "Jane Cooper",
    ) -> Shopper:  # fmt: skip
        """A fresh customer of ``slug`` (with ``email``, or a fresh address), signed in with a new client."""
        tenant = self.tenants[slug]
        merchant = tenant.merchant
        customer = CustomerView(
            id=new_id("cus"), merchant_id=merchant.id, email=email or f"s-{secrets.token_hex(5)}@example.com",
            name=name,
        )  # fmt: skip
        async with tenant_transaction(merchant.iso_id):
            await fetch(
                "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
                "VALUES ($1, $2, $3, $4, $4, $5)",
                customer.id, merchant.iso_id, merchant.id, customer.email, customer.name,
            )  # fmt: skip
        client = client_for(host(slug))
        await sign_in(self.platform, client, customer.email)
        return Shopper(self, slug, customer, client)

    async def refresh(self) -> None:
        for slug in self.tenants:
            tenant = await self.platform.tenants.resolve(host(slug))
            assert tenant is not None
            self.tenants[slug] = tenant

    async def audit(self, slug: str, target_id: str) -> list[dict[str, Any]]:
        """The audit records about one object, oldest first."""
        tenant = self.tenants[slug]
        async with tenant_transaction(tenant.merchant.iso_id):
            return await fetch(
                "SELECT type, actor_type, actor_id, ip, user_agent, request_id, before::text AS before, "
                "after::text AS after, data::text AS data FROM portal_audit_event "
                "WHERE merchant_id = $1 AND target_id = $2 ORDER BY seq",
                tenant.merchant.id,
                target_id,
            )

    async def rows(self, slug: str, sub_id: str) -> dict[str, Any]:
        """What a POST could change: the subscription row, its invoices and its audit records."""
        tenant = self.tenants[slug]
        async with tenant_transaction(tenant.merchant.iso_id):
            sub = await fetch("SELECT * FROM portal_billing_subscription WHERE id = $1", sub_id)
            invoices = await fetch("SELECT id, status, total FROM portal_billing_invoice WHERE subscription_id = $1 "
                                   "ORDER BY id", sub_id)  # fmt: skip
            audit = await fetch("SELECT count(*) AS n FROM portal_audit_event WHERE target_id = $1", sub_id)
        return {"subscription": sub, "invoices": invoices, "audit": audit[0]["n"]}


async def _prices(platform: Platform, tenant: Tenant) -> dict[str, Price]:
    async with tenant_transaction(tenant.merchant.iso_id):
        made: dict[str, Price] = {}
        for name, amount, interval in (
            ("Monthly Bread Box", 3900, "month"),
            ("Office Breakfast Plan", 289000, "month"),
            ("Family Bread Box", 5900, "month"),
            ("Yearly Bread Box", 39000, "year"),
        ):
            product = await catalog.create_product(tenant, name=name, actor=MERCHANT_ACTOR)
            made[name] = await catalog.create_price(
                tenant, product_id=product.id, currency="USD", unit_amount=amount, interval=interval,
                actor=MERCHANT_ACTOR,
            )  # fmt: skip
    return made


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def world(shared_tenants: Platform, tmp_path_factory: Any) -> World:
    """Every merchant of the test world, with four prices each (bread boxes and an office plan)."""
    folder: Path = tmp_path_factory.mktemp("subscription-tenants")
    await apply_tenants(shared_tenants, tenant_file([]), folder)
    made = World(shared_tenants)
    for slug in (MAIN, RESTRICTED, PARTIAL, DEFAULTS, OFF, SIBLING, FAR):
        tenant = await shared_tenants.tenants.resolve(host(slug))
        assert tenant is not None
        made.tenants[slug] = tenant
        made.prices[slug] = await _prices(shared_tenants, tenant)
    main = made.prices[MAIN]
    await apply_tenants(
        shared_tenants,
        tenant_file([main["Monthly Bread Box"].id, main["Family Bread Box"].id, main["Yearly Bread Box"].id]),
        folder,
    )
    await made.refresh()
    return made


ShopperFactory = Callable[..., Any]


@pytest.fixture
def shopper(world: World, portal_client: Callable[[str], httpx.AsyncClient]) -> ShopperFactory:
    """``await shopper(slug)``: a fresh customer of the merchant ``slug`` (default: the main one), signed in."""

    async def make(slug: str = MAIN, email: str | None = None, name: str = "Jane Cooper") -> Shopper:
        return await world.shopper(portal_client, slug, email, name)

    return make
