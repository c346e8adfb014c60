"""The billing tests' merchants (sandbox gateway, two time zones), their customers and cards (``Ledger``).

Cards go on file the way the portal puts them there: the sandbox's hosted fields tokenize a test
card and ``portal.payments.methods.attach`` vaults it. The fixtures are in ``tests/core/billing/conftest.py``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from portal.billing import catalog, subscriptions
from portal.billing.models import Price, Subscription
from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import Actor
from portal.ids import new_id
from portal.payments import methods
from portal.payments.sandbox import SandboxAdapter
from portal.platform import Platform
from portal.tenancy.models import CustomerView, Tenant

RUN = uuid.uuid4().hex[:6]
NEW_YORK, AUCKLAND, NO_GATEWAY = (f"bill-{name}-{RUN}" for name in ("ny", "akl", "none"))
ACTOR = Actor(type="merchant_api_key", id="key_billing_tests")
FUTURE = f"12 / {(datetime.now(UTC).year + 3) % 100:02d}"
GOOD_CARD, DECLINED_ON_SALE = "4111111111111111", "4000000000000341"

TENANTS = f"""
[[isos]]
slug = "bill-iso-{RUN}"
name = "Billing ISO"

[[isos.merchants]]
slug = "{NEW_YORK}"
name = "Greenfield Test"
timezone = "America/New_York"
[isos.merchants.gateway]
key = "sandbox"

[[isos.merchants]]
slug = "{AUCKLAND}"
name = "Kiwi Test"
timezone = "Pacific/Auckland"
[isos.merchants.gateway]
key = "sandbox"

[[isos.merchants]]
slug = "{NO_GATEWAY}"
name = "No gateway"
"""


class Ledger:
    """One merchant's ledger in tests: transactions, customers, cards, prices and subscriptions."""

    def __init__(self, platform: Platform, tenant: Tenant, client: Any) -> None:
        self.platform = platform
        self.tenant = tenant
        self.client = client

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[None]:
        async with tenant_transaction(self.tenant.merchant.iso_id):
            yield

    async def customer(self) -> CustomerView:
        merchant = self.tenant.merchant
        customer = CustomerView(
            id=new_id("cus"), merchant_id=merchant.id, email=f"b-{secrets.token_hex(5)}@example.com", name="Jane"
        )
        async with self.tx():
            await fetch(
                "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
                "VALUES ($1, $2, $3, $4, $4, $5)",
                customer.id, merchant.iso_id, merchant.id, customer.email, customer.name,
            )  # fmt: skip
        return customer

    async def card(self, customer: CustomerView, number: str = GOOD_CARD) -> methods.PaymentMethod:
        """Put a sandbox test card on file as the customer's default."""
        adapter = self.platform.gateways.for_tenant(self.tenant)
        assert isinstance(adapter, SandboxAdapter)
        body = {"tokenization_key": adapter.tokenization_key, "ccnumber": number, "ccexp": FUTURE, "cvv": "123"}
        response = await self.client.post("/sandbox-gateway/tokenize", json=body)
        assert response.status_code == 200, response.text
        attached = await methods.attach(
            self.platform.gateways, self.tenant, customer, str(response.json()["token"]), make_default=True
        )
        return attached.method

    async def price(
        self, unit_amount: int, *, currency: str = "USD", interval: Any = "month", count: int = 1, name: str = "Box"
    ) -> Price:
        async with self.tx():
            product = await catalog.create_product(self.tenant, name=name, actor=ACTOR)
            return await catalog.create_price(
                self.tenant, product_id=product.id, currency=currency, unit_amount=unit_amount, interval=interval,
                interval_count=count, actor=ACTOR,
            )  # fmt: skip

    async def subscribe(self, price: Price, *, now: datetime, quantity: int = 1, **kwargs: Any) -> Subscription:
        customer = kwargs.pop("customer", None) or await self.customer()
        async with self.tx():
            return await subscriptions.create(
                self.tenant, customer_id=customer.id, price_id=price.id, quantity=quantity, now=now, actor=ACTOR,
                **kwargs,
            )  # fmt: skip

    async def events(self, target_id: str) -> list[str]:
        """Event types about one object, oldest first."""
        async with self.tx():
            rows = await fetch(
                "SELECT type FROM portal_audit_event WHERE merchant_id = $1 AND target_id = $2 ORDER BY seq",
                self.tenant.merchant.id,
                target_id,
            )
        return [row["type"] for row in rows]

    async def count(self, table: str, **where: str) -> int:
        conditions = " AND ".join(f"{column} = ${i + 2}" for i, column in enumerate(where))
        sql = f"SELECT count(*) AS n FROM {table} WHERE merchant_id = $1" + (f" AND {conditions}" if where else "")
        async with self.tx():
            rows = await fetch(sql, self.tenant.merchant.id, *where.values())
        return int(rows[0]["n"])
