"""Helpers for the cards plugin's tests: fresh customers, CSRF tokens and sandbox card tokens."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from portal.db.engine import fetch, tenant_transaction
from portal.ids import new_id
from portal.platform import Platform
from portal.tenancy.models import Tenant
from portal.testing import sign_in

GREENFIELD = "t-greenfield.portal.localhost"
PINNACLE = "t-pinnacle.portal.localhost"
APEX = "t-apex.portal.localhost"
NORTHWIND = "t-northwind.portal.localhost"

VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
DECLINES = "4000000000000002"
EXPIRED = "4000000000000069"
PROCESSOR_ERROR = "4000000000000119"
CHARGES_FAIL = "4000000000000341"

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TOKENIZATION_KEY = re.compile(r'data-tokenization-key="([^"]+)"')


@pytest_asyncio.fixture(loop_scope="session")
async def platform(shared_tenants: Platform) -> Platform:
    return shared_tenants


def fresh_address(prefix: str, domain: str = "example.com") -> str:
    """A fresh email address without digits, so no card's last four can ever appear in it."""
    return f"{prefix}-{secrets.token_hex(4).translate(_DIGITS_TO_LETTERS)}@{domain}"


_DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


async def tenant_at(platform: Platform, host: str) -> Tenant:
    tenant = await platform.tenants.resolve(host)
    assert tenant is not None
    return tenant


async def new_customer(
    platform: Platform, host: str, name: str = "Casey Card", email: str | None = None
) -> tuple[str, str]:
    """A fresh customer of ``host``'s merchant (a fresh address unless ``email`` is given): (id, email)."""
    tenant = await tenant_at(platform, host)
    email = email or fresh_address("card")
    customer = new_id("cus")
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
            "VALUES ($1, $2, $3, $4, $4, $5)",
            customer,
            tenant.merchant.iso_id,
            tenant.merchant.id,
            email,
            name,
        )
    return customer, email


class Shopper:
    """A signed-in customer's browser session on one merchant host."""

    def __init__(self, client: httpx.AsyncClient, customer_id: str) -> None:
        self.client = client
        self.id = customer_id

    async def csrf(self, path: str = "/payment-methods") -> str:
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    async def tokenize(
        self, number: str, exp: str = "12 / 30", cvv: str = "123", *, form: str = "/payment-methods/new"
    ) -> str:
        """Turn a card into a payment token the way the hosted fields on ``form`` do (through the sandbox)."""
        page = await self.client.get(form)
        key = TOKENIZATION_KEY.search(page.text)
        assert key, f"{form} has no hosted fields"
        response = await self.client.post(
            "/sandbox-gateway/tokenize",
            json={"tokenization_key": key.group(1), "ccnumber": number, "ccexp": exp, "cvv": cvv},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    async def add(self, number: str, *, make_default: bool = False, exp: str = "12 / 30") -> httpx.Response:
        token = await self.tokenize(number, exp=exp)
        data = {"csrf_token": await self.csrf("/payment-methods/new"), "payment_token": token}
        if make_default:
            data["make_default"] = "on"
        return await self.client.post("/payment-methods", data=data)

    async def post(self, path: str, **data: str) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": await self.csrf(), **data})

    async def follow(self, response: httpx.Response, expect: str) -> httpx.Response:
        """The page a ``303`` answer sends the browser to, which must be ``expect``."""
        assert response.status_code == 303, response.text
        assert response.headers["location"] == expect
        page = await self.client.get(expect)
        assert page.status_code == 200, page.text
        return page


@pytest.fixture
def shopper(platform: Platform, portal_client: Callable[[str], httpx.AsyncClient]) -> Callable[..., Awaitable[Shopper]]:
    """``await shopper(host)``: a fresh customer signed in on ``host`` (with ``email`` when given)."""

    async def make(host: str = GREENFIELD, name: str = "Casey Card", email: str | None = None) -> Shopper:
        customer, email = await new_customer(platform, host, name, email)
        client = portal_client(host)
        await sign_in(platform, client, email)
        return Shopper(client, customer)

    return make


async def cards_of(platform: Platform, host: str, customer: str) -> list[dict[str, Any]]:
    """The customer's card rows, removed ones included, oldest first."""
    tenant = await tenant_at(platform, host)
    async with tenant_transaction(tenant.merchant.iso_id):
        return await fetch(
            "SELECT * FROM portal_payment_method WHERE customer_id = $1 ORDER BY created_at, id", customer
        )


async def vault_cards(platform: Platform, host: str, vault_id: str) -> list[dict[str, Any]]:
    """The cards the sandbox gateway holds in one customer vault record, oldest first."""
    tenant = await tenant_at(platform, host)
    async with tenant_transaction(tenant.merchant.iso_id):
        return await fetch(
            "SELECT billing_id, brand, last4, exp_month, exp_year FROM portal_sandbox_billing "
            "WHERE merchant_id = $1 AND vault_id = $2 ORDER BY created_at, billing_id",
            tenant.merchant.id,
            vault_id,
        )


async def events_of(platform: Platform, host: str, customer: str) -> list[dict[str, Any]]:
    """The audit records about the customer, oldest first."""
    tenant = await tenant_at(platform, host)
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT type, actor_type, actor_id, target_type, target_id, data::text AS data "
            "FROM portal_audit_event WHERE customer_id = $1 AND type LIKE 'payment_method.%' ORDER BY seq",
            customer,
        )
    return [{**row, "data": json.loads(row["data"])} for row in rows]
