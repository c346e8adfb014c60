"""Payment methods in core (``portal.payments.methods``): cards on file, the default, the vault.

Against the test database and the sandbox gateway through its production adapter, for merchants
that do not have the cards plugin on: billing charges the default card whatever pages a merchant
shows.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio

from portal.db.engine import current_iso, fetch, tenant_transaction
from portal.ids import new_id
from portal.payments import methods
from portal.payments.choice import GatewayNotConfiguredError
from portal.payments.gateway import GatewayDeclinedError, Money
from portal.payments.methods import Attached, PaymentMethodError, PaymentMethodNotFoundError
from portal.payments.sandbox import SandboxAdapter
from portal.platform import Platform
from portal.tenancy.models import CustomerView, Tenant
from portal.testing import BASE_DOMAIN, ClientFactory, apply_tenants

RUN = uuid.uuid4().hex[:6]
SHOP, OTHER_SHOP, NO_GATEWAY, ELSEWHERE = (f"pm-{name}-{RUN}" for name in ("shop", "other", "none", "elsewhere"))
FUTURE = f"12 / {(datetime.now(UTC).year + 3) % 100:02d}"
VISA, MASTERCARD, AMEX, DECLINES = "4111111111111111", "5555555555554444", "378282246310005", "4000000000000002"

TENANTS = f"""
[[isos]]
slug = "pm-iso-a-{RUN}"
name = "Payment methods ISO A"

[[isos.merchants]]
slug = "{SHOP}"
name = "Shop"
[isos.merchants.gateway]
key = "sandbox"

[[isos.merchants]]
slug = "{OTHER_SHOP}"
name = "Other shop"
[isos.merchants.gateway]
key = "sandbox"

[[isos.merchants]]
slug = "{NO_GATEWAY}"
name = "No gateway"

[[isos]]
slug = "pm-iso-b-{RUN}"
name = "Payment methods ISO B"

[[isos.merchants]]
slug = "{ELSEWHERE}"
name = "Elsewhere"
[isos.merchants.gateway]
key = "sandbox"
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(portal_platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The platform with this module's merchants (the cards plugin off for all of them)."""
    await apply_tenants(portal_platform, TENANTS, tmp_path_factory.mktemp("payment-methods"))
    return portal_platform


async def tenant_of(platform: Platform, slug: str) -> Tenant:
    tenant = await platform.tenants.resolve(f"{slug}.{BASE_DOMAIN}")
    assert tenant is not None
    assert "cards" not in tenant.enabled_plugins
    return tenant


async def new_customer(tenant: Tenant) -> CustomerView:
    customer = CustomerView(
        id=new_id("cus"), merchant_id=tenant.merchant.id, email=f"pm-{secrets.token_hex(4)}@example.com", name="Pat"
    )
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
            "VALUES ($1, $2, $3, $4, $4, $5)",
            customer.id, tenant.merchant.iso_id, tenant.merchant.id, customer.email, customer.name,
        )  # fmt: skip
    return customer


class Shop:
    """One merchant on the sandbox gateway, and payment tokens as its hosted fields make them."""

    def __init__(self, platform: Platform, tenant: Tenant, client: Any) -> None:
        self.platform = platform
        self.tenant = tenant
        self.client = client

    async def token(self, number: str, exp: str = FUTURE) -> str:
        adapter = self.platform.gateways.for_tenant(self.tenant)
        assert isinstance(adapter, SandboxAdapter)
        key = adapter.tokenization_key
        body = {"tokenization_key": key, "ccnumber": number, "ccexp": exp, "cvv": "1234" if number == AMEX else "123"}
        response = await self.client.post("/sandbox-gateway/tokenize", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    async def attach(self, customer: CustomerView, number: str, **kwargs: Any) -> Attached:
        kwargs.setdefault("make_default", False)
        token = await self.token(number, exp=kwargs.pop("exp", FUTURE))
        return await methods.attach(self.platform.gateways, self.tenant, customer, token, **kwargs)

    async def on_file(self, customer: CustomerView) -> list[methods.PaymentMethod]:
        return await methods.list_methods(self.tenant.merchant.iso_id, self.tenant.merchant.id, customer.id)

    async def vault(self, vault_id: str) -> list[str]:
        """Billing ids the sandbox holds in one vault record."""
        async with tenant_transaction(self.tenant.merchant.iso_id):
            rows = await fetch(
                "SELECT billing_id FROM portal_sandbox_billing WHERE merchant_id = $1 AND vault_id = $2 "
                "ORDER BY billing_id",
                self.tenant.merchant.id,
                vault_id,
            )
        return [row["billing_id"] for row in rows]

    async def expire(self, method_id: str) -> None:
        async with tenant_transaction(self.tenant.merchant.iso_id):
            await fetch("UPDATE portal_payment_method SET exp_month = 1, exp_year = 2020 WHERE id = $1", method_id)


async def shop_at(platform: Platform, portal_client: ClientFactory, slug: str = SHOP) -> Shop:
    return Shop(platform, await tenant_of(platform, slug), portal_client(f"{slug}.{BASE_DOMAIN}"))


async def test_the_first_card_is_the_default_and_ready_to_charge(
    platform: Platform, portal_client: ClientFactory
) -> None:
    shop = await shop_at(platform, portal_client)
    customer = await new_customer(shop.tenant)
    seen: list[str | None] = []

    async def then(attached: Attached) -> None:
        seen.append(current_iso())

    first = await shop.attach(customer, VISA, then=then)
    assert seen == [shop.tenant.merchant.iso_id], "then runs inside the change's transaction"
    card = first.method
    assert first.new and first.default_changed and first.previous_default is None and first.retired is None
    assert (card.brand, card.last4, card.exp_month, card.is_default, card.gateway) == (
        "visa",
        "1111",
        12,
        True,
        "sandbox",
    )
    assert card.id.startswith("pm_") and card.customer_id == customer.id
    assert await shop.vault(card.vault_id) == [card.billing_id]
    assert await shop.on_file(customer) == [card]
    merchant = shop.tenant.merchant
    assert await methods.default_method(merchant.iso_id, merchant.id, customer.id) == card
    ready = await methods.charge_ready(shop.tenant, customer.id)
    assert ready == card
    assert ready is not None
    adapter = platform.gateways.for_tenant(shop.tenant)
    sale = await adapter.sale(
        vault_id=ready.vault_id, billing_id=ready.billing_id, amount=Money(3900, "USD"), order_id=f"inv-{RUN}-1"
    )
    assert sale.outcome == "approved"

    second = await shop.attach(customer, MASTERCARD)
    assert second.new and not second.default_changed and second.previous_default == card.id
    assert second.method.vault_id == card.vault_id, "one vault record per customer"
    third = await shop.attach(customer, AMEX, make_default=True)
    assert third.default_changed and third.previous_default == card.id
    on_file = await shop.on_file(customer)
    assert [m.id for m in on_file] == [third.method.id, second.method.id, card.id], "default first, then newest"
    assert [m.is_default for m in on_file] == [True, False, False]
    assert sorted(await shop.vault(card.vault_id)) == sorted(m.billing_id for m in on_file)


async def test_a_card_on_file_gets_no_twin(platform: Platform, portal_client: ClientFactory) -> None:
    shop = await shop_at(platform, portal_client)
    customer = await new_customer(shop.tenant)
    visa = (await shop.attach(customer, VISA)).method
    other = (await shop.attach(customer, MASTERCARD)).method
    with pytest.raises(PaymentMethodError) as refused:
        await shop.attach(customer, VISA, make_default=True)
    assert (refused.value.code, refused.value.method_id) == ("duplicate", visa.id)
    with pytest.raises(PaymentMethodError) as refused:
        await shop.attach(customer, MASTERCARD)
    assert (refused.value.code, refused.value.method_id) == ("duplicate", other.id)
    chosen = await shop.attach(customer, MASTERCARD, make_default=True)
    assert not chosen.new and chosen.default_changed and chosen.previous_default == visa.id
    assert chosen.method == msgspec.structs.replace(other, is_default=True)
    with pytest.raises(PaymentMethodError) as refused:
        await shop.attach(customer, MASTERCARD, replacing=True)
    assert refused.value.code == "already_default"
    assert {m.id for m in await shop.on_file(customer)} == {visa.id, other.id}
    assert sorted(await shop.vault(visa.vault_id)) == sorted([visa.billing_id, other.billing_id]), "new entries undone"


async def test_limits_and_replacing_the_default_at_the_limit(platform: Platform, portal_client: ClientFactory) -> None:
    shop = await shop_at(platform, portal_client)
    customer = await new_customer(shop.tenant)
    old = (await shop.attach(customer, VISA, max_methods=1)).method
    with pytest.raises(PaymentMethodError) as refused:
        await shop.attach(customer, MASTERCARD, max_methods=1)
    assert refused.value.code == "limit"
    assert await shop.vault(old.vault_id) == [old.billing_id], "refused before the gateway was asked"
    replaced = await shop.attach(customer, MASTERCARD, max_methods=1, replacing=True)
    assert replaced.new and replaced.default_changed and replaced.previous_default == old.id
    assert replaced.retired == old
    assert await shop.on_file(customer) == [replaced.method]
    merchant = shop.tenant.merchant
    gone = await methods.removed_method(merchant.iso_id, merchant.id, customer.id, old.id)
    assert gone is not None and not gone.is_default
    assert await shop.vault(old.vault_id) == [replaced.method.billing_id]


async def test_a_failed_change_records_nothing_and_leaves_nothing_in_the_vault(
    platform: Platform, portal_client: ClientFactory
) -> None:
    shop = await shop_at(platform, portal_client)
    customer = await new_customer(shop.tenant)
    card = (await shop.attach(customer, VISA)).method

    async def fail(attached: Attached) -> None:
        await fetch("SELECT 1")  # inside the transaction, which then fails
        raise RuntimeError("the caller's own write failed")

    with pytest.raises(RuntimeError):
        await shop.attach(customer, MASTERCARD, make_default=True, then=fail)
    assert await shop.on_file(customer) == [card]
    assert await shop.vault(card.vault_id) == [card.billing_id]
    with pytest.raises(GatewayDeclinedError):
        await shop.attach(customer, DECLINES)
    assert await shop.on_file(customer) == [card]
    token = await shop.token(MASTERCARD)
    async with tenant_transaction(shop.tenant.merchant.iso_id):
        with pytest.raises(RuntimeError, match="outside"):
            await methods.attach(platform.gateways, shop.tenant, customer, token, make_default=False)
    stranger = await new_customer(shop.tenant)
    no_gateway = await tenant_of(platform, NO_GATEWAY)
    with pytest.raises(GatewayNotConfiguredError):
        await methods.attach(platform.gateways, no_gateway, stranger, await shop.token(VISA), make_default=False)


async def test_make_default(platform: Platform, portal_client: ClientFactory) -> None:
    shop = await shop_at(platform, portal_client)
    merchant = shop.tenant.merchant
    customer = await new_customer(shop.tenant)
    first = (await shop.attach(customer, VISA)).method
    second = (await shop.attach(customer, MASTERCARD)).method
    change = await methods.make_default(merchant, customer.id, second.id)
    assert change.changed and change.previous_default == first.id and change.method.is_default
    again = await methods.make_default(merchant, customer.id, second.id)
    assert not again.changed
    await shop.expire(first.id)
    with pytest.raises(PaymentMethodError) as refused:
        await methods.make_default(merchant, customer.id, first.id)
    assert (refused.value.code, refused.value.method_id) == ("expired_default", first.id)
    stranger = await new_customer(shop.tenant)
    with pytest.raises(PaymentMethodNotFoundError):
        await methods.make_default(merchant, stranger.id, second.id)
    assert (await methods.default_method(merchant.iso_id, merchant.id, customer.id)) == change.method


async def test_removing_the_default_passes_it_on_to_the_newest_usable_card(
    platform: Platform, portal_client: ClientFactory
) -> None:
    shop = await shop_at(platform, portal_client)
    merchant = shop.tenant.merchant
    customer = await new_customer(shop.tenant)
    oldest = (await shop.attach(customer, VISA)).method
    middle = (await shop.attach(customer, MASTERCARD)).method
    newest = (await shop.attach(customer, AMEX)).method
    await shop.expire(newest.id)
    written: list[methods.Removed] = []

    async def then(removed: methods.Removed) -> None:
        written.append(removed)

    removed = await methods.remove(platform.gateways, shop.tenant, customer.id, oldest.id, then=then)
    assert written == [removed]
    assert removed.method == oldest and removed.successor is not None
    assert removed.successor.id == middle.id and removed.successor.is_default, "the expired newest card is passed over"
    assert [m.id for m in await shop.on_file(customer)] == [middle.id, newest.id]
    assert oldest.billing_id not in await shop.vault(oldest.vault_id)
    assert await methods.removed_method(merchant.iso_id, merchant.id, customer.id, oldest.id) is not None
    with pytest.raises(PaymentMethodNotFoundError):
        await methods.remove(platform.gateways, shop.tenant, customer.id, oldest.id)
    last = await methods.remove(platform.gateways, shop.tenant, customer.id, middle.id)
    assert last.successor is None, "every remaining card has expired"
    assert await methods.default_method(merchant.iso_id, merchant.id, customer.id) is None
    assert await methods.charge_ready(shop.tenant, customer.id) is None
    await methods.remove(platform.gateways, shop.tenant, customer.id, newest.id)
    assert await shop.on_file(customer) == []
    assert await shop.vault(oldest.vault_id) == [], "the last card took the vault record with it"


async def test_charge_ready_only_offers_a_default_it_can_charge(
    platform: Platform, portal_client: ClientFactory
) -> None:
    shop = await shop_at(platform, portal_client)
    customer = await new_customer(shop.tenant)
    assert await methods.charge_ready(shop.tenant, customer.id) is None
    card = (await shop.attach(customer, VISA, exp="03 / 30")).method
    assert await methods.charge_ready(shop.tenant, customer.id, today=date(2030, 3, 31)) == card
    assert await methods.charge_ready(shop.tenant, customer.id, today=date(2030, 4, 1)) is None, "expired"
    moved = msgspec.structs.replace(shop.tenant, gateway=None)
    assert await methods.charge_ready(moved, customer.id) is None, "vaulted at a gateway the merchant left"


async def test_every_lookup_stays_within_its_merchant_and_customer(
    platform: Platform, portal_client: ClientFactory
) -> None:
    shop = await shop_at(platform, portal_client)
    merchant = shop.tenant.merchant
    customer = await new_customer(shop.tenant)
    card = (await shop.attach(customer, VISA)).method
    other = await shop_at(platform, portal_client, OTHER_SHOP)
    elsewhere = await shop_at(platform, portal_client, ELSEWHERE)
    stranger = await new_customer(shop.tenant)
    assert await methods.list_methods(merchant.iso_id, other.tenant.merchant.id, customer.id) == []
    assert await methods.list_methods(merchant.iso_id, merchant.id, stranger.id) == []
    assert await methods.list_methods(elsewhere.tenant.merchant.iso_id, merchant.id, customer.id) == [], "RLS"
    assert await methods.default_method(elsewhere.tenant.merchant.iso_id, merchant.id, customer.id) is None
    for tenant, customer_id in ((other.tenant, customer.id), (shop.tenant, stranger.id)):
        with pytest.raises(PaymentMethodNotFoundError):
            await methods.remove(platform.gateways, tenant, customer_id, card.id)
        with pytest.raises(PaymentMethodNotFoundError):
            await methods.make_default(tenant.merchant, customer_id, card.id)
    assert await shop.on_file(customer) == [card]


def test_the_api_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "payments.md").read_text(encoding="utf-8")
    for name in (
        "list_methods",
        "default_method",
        "removed_method",
        "charge_ready",
        "attach",
        "make_default",
        "remove",
    ):
        assert f"`{name}(" in doc, name
