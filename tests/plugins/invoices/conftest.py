"""The invoices plugin's test world: merchants with different permissions, their customers and invoices.

Applied once per test process with a tenant file of its own (``inv-*-<run>`` slugs). Each test
makes fresh customers and invoices (:meth:`World.shopper`, :meth:`Shopper.invoice`), so tests run
in any order.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from portal.billing import invoices
from portal.billing.models import Invoice, LineInput
from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import Actor
from portal.ids import new_id
from portal.payments import methods
from portal.payments.sandbox import SandboxAdapter
from portal.platform import Platform
from portal.tenancy.models import CustomerView, Tenant
from portal.testing import apply_tenants, sign_in

RUN = f"{os.getpid():x}"
MAIN, RESTRICTED, SAVED_ONLY, OFF, SIBLING, FAR = (
    f"inv-{name}-{RUN}" for name in ("main", "restricted", "saved", "off", "sibling", "far")
)
MERCHANT_ACTOR = Actor(type="merchant_api_key", id="key_invoice_tests")
FUTURE = f"12 / {(datetime.now(UTC).year + 3) % 100:02d}"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FOOTER = "Greenfield Bakery LLC, EIN 12-3456789"
PAY_KEY = re.compile(r'name="pay_key" value="([^"]+)"')


def tenant_file() -> str:
    merchants = [
        (
            MAIN,
            "Greenfield Test",
            f'settings = {{ show_void = true, allow_billing_details_update = true, pdf_footer = "{FOOTER}" }}',
        ),
        (RESTRICTED, "Locked Down", "settings = { allow_pay = false, allow_pay_with_new_card = false }"),
        (SAVED_ONLY, "Saved Cards Only", "settings = { allow_pay_with_new_card = false }"),
        (OFF, "Plugin Off", None),
        (SIBLING, "Sibling", ""),
    ]
    text = f'[[isos]]\nslug = "inv-iso-{RUN}"\nname = "Invoices ISO"\n\n'
    for slug, name, settings in merchants:
        text += f'[[isos.merchants]]\nslug = "{slug}"\nname = "{name}"\ntimezone = "America/New_York"\n'
        text += 'locale = "en-US"\n[isos.merchants.brand]\ncolor = "#2e7d32"\nsupport_email = "help@example.test"\n'
        text += 'terms_url = "https://example.test/terms"\n'
        text += '[isos.merchants.gateway]\nkey = "sandbox"\n[isos.merchants.plugins.cards]\n'
        if settings is not None:
            text += f"[isos.merchants.plugins.invoices]\n{settings}\n"
        text += "\n"
    text += f'[[isos]]\nslug = "inv-far-iso-{RUN}"\nname = "Far ISO"\n\n'
    text += f'[[isos.merchants]]\nslug = "{FAR}"\nname = "Far Away"\n[isos.merchants.gateway]\nkey = "sandbox"\n'
    text += "[isos.merchants.plugins.invoices]\n"
    return text


def host(slug: str) -> str:
    return f"{slug}.portal.localhost"


@dataclass
class Shopper:
    """A customer signed in on one merchant host, with the helpers tests need."""

    world: World
    slug: str
    customer: CustomerView
    client: httpx.AsyncClient

    @property
    def tenant(self) -> Tenant:
        return self.world.tenants[self.slug]

    async def form(self, path: str) -> dict[str, str]:
        """The CSRF token and pay key of the form on ``path``."""
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}"
        values = {"csrf_token": found.group(1)}
        key = PAY_KEY.search(page.text)
        if key:
            values["pay_key"] = key.group(1)
        return values

    async def token(self, number: str = "4111111111111111") -> str:
        """A hosted-fields payment token for a sandbox test card."""
        adapter = self.world.platform.gateways.for_tenant(self.tenant)
        assert isinstance(adapter, SandboxAdapter)
        body = {"tokenization_key": adapter.tokenization_key, "ccnumber": number, "ccexp": FUTURE, "cvv": "123"}
        response = await self.client.post("/sandbox-gateway/tokenize", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    async def card(self, number: str = "4111111111111111", *, default: bool = True) -> methods.PaymentMethod:
        """Put a sandbox test card on file."""
        attached = await methods.attach(
            self.world.platform.gateways, self.tenant, self.customer, await self.token(number), make_default=default
        )
        return attached.method

    async def invoice(
        self, amount: int = 342000, *, description: str = "Holiday catering", days_ago: int = 2, due_in: int = 21,
        tax: int = 0, currency: str = "USD",
    ) -> Invoice:  # fmt: skip
        """A finalized one-off invoice, open."""
        at = datetime.now(UTC) - timedelta(days=days_ago)
        async with tenant_transaction(self.tenant.merchant.iso_id):
            draft = await invoices.create(
                self.tenant, customer_id=self.customer.id, currency=currency, tax=tax,
                lines=[LineInput(description=description, unit_amount=amount)],
                due_at=at + timedelta(days=due_in), now=at, actor=MERCHANT_ACTOR,
            )  # fmt: skip
            return await invoices.finalize(self.tenant, draft.id, now=at, actor=MERCHANT_ACTOR)

    async def get(self, invoice_id: str) -> Invoice:
        async with tenant_transaction(self.tenant.merchant.iso_id):
            return await invoices.get(self.tenant, invoice_id)

    async def attempts(self, invoice_id: str) -> list[dict[str, Any]]:
        async with tenant_transaction(self.tenant.merchant.iso_id):
            return await fetch(
                "SELECT id, outcome, order_id FROM portal_billing_payment_attempt WHERE invoice_id = $1 "
                "ORDER BY attempt_number",
                invoice_id,
            )

    async def sales(self, invoice_id: str) -> list[dict[str, Any]]:
        """The sandbox's approved sales for the invoice's orders."""
        async with tenant_transaction(self.tenant.merchant.iso_id):
            return await fetch(
                "SELECT order_id FROM portal_sandbox_transaction WHERE merchant_id = $1 AND order_id LIKE $2 "
                "AND outcome = 'approved'",
                self.tenant.merchant.id,
                f"{invoice_id}-%",
            )


@dataclass
class World:
    """The merchants (by slug) and a way to make shoppers."""

    platform: Platform
    tenants: dict[str, Tenant] = field(default_factory=dict)

    async def shopper(
        self, client_for: Callable[[str], httpx.AsyncClient], slug: str = MAIN, email: str | None = None,
        name: str = "Jane Cooper",
    ) -> Shopper:  # fmt: skip
        tenant = self.tenants[slug]
        merchant = tenant.merchant
        customer = CustomerView(
            id=new_id("cus"), merchant_id=merchant.id, email=email or f"i-{secrets.token_hex(5)}@example.com",
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


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def world(shared_tenants: Platform, tmp_path_factory: Any) -> World:
    """Every merchant of the test world."""
    folder: Path = tmp_path_factory.mktemp("invoice-tenants")
    await apply_tenants(shared_tenants, tenant_file(), folder)
    made = World(shared_tenants)
    for slug in (MAIN, RESTRICTED, SAVED_ONLY, OFF, SIBLING, FAR):
        tenant = await shared_tenants.tenants.resolve(host(slug))
        assert tenant is not None
        made.tenants[slug] = tenant
    return made


ShopperFactory = Callable[..., Any]


@pytest.fixture
def shopper(world: World, portal_client: Callable[[str], httpx.AsyncClient]) -> ShopperFactory:
    """``await shopper(slug)``: a fresh customer of the merchant ``slug`` (default: the main one), signed in."""

    async def make(slug: str = MAIN, email: str | None = None, name: str = "Jane Cooper") -> Shopper:
        return await world.shopper(portal_client, slug, email, name)

    return make
