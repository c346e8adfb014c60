"""Customers' billing details in core (``portal.customers.billing``): validation, storage, events.

Against the test database: writes go through ``update_billing_details`` in the merchant's
tenant transaction, and their ``customer.updated`` audit records are read back.
"""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio

from portal.billing.errors import NotFoundError
from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import Actor
from portal.ids import new_id
from portal.platform import Platform
from portal.sdk import BillingDetails, BillingDetailsError, get_billing_details, update_billing_details
from portal.tenancy.models import Tenant
from portal.testing import BASE_DOMAIN, apply_tenants, customer_id

RUN = uuid.uuid4().hex[:6]
SHOP, OTHER = f"bd-shop-{RUN}", f"bd-other-{RUN}"
ACTOR = Actor(type="merchant_api_key", id="key_test")

TENANTS = f"""
[[isos]]
slug = "bd-iso-{RUN}"
name = "Billing details ISO"

[[isos.merchants]]
slug = "{SHOP}"
name = "Shop"
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"

[[isos.merchants]]
slug = "{OTHER}"
name = "Other shop"
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"
"""

US = BillingDetails(name="Globalco Inc.", line1="1 Main St", city="Springfield", postal_code="62701", country="US")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shops(portal_platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> tuple[Tenant, Tenant]:
    await apply_tenants(portal_platform, TENANTS, tmp_path_factory.mktemp("billing-details"))
    found = [await portal_platform.tenants.resolve(f"{slug}.{BASE_DOMAIN}") for slug in (SHOP, OTHER)]
    assert found[0] is not None and found[1] is not None
    return found[0], found[1]


async def _new_customer(tenant: Tenant) -> str:
    """A fresh customer of the merchant, so tests running in any order do not share one."""
    new = new_id("cus")
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
            "VALUES ($1, $2, $3, $4, $4, 'Jane Cooper')",
            new,
            tenant.merchant.iso_id,
            tenant.merchant.id,
            f"{new}@globalco.com",
        )
    return new


async def _update(platform: Platform, tenant: Tenant, customer: str, details: BillingDetails) -> BillingDetails:
    async with tenant_transaction(tenant.merchant.iso_id):
        return await update_billing_details(tenant, customer, details, actor=ACTOR, registry=platform.registry)


async def _events(tenant: Tenant, customer: str) -> list[dict[str, object]]:
    async with tenant_transaction(tenant.merchant.iso_id):
        return await fetch(
            "SELECT type, before, after, actor_type FROM portal_audit_event "
            "WHERE merchant_id = $1 AND customer_id = $2 AND type = 'customer.updated' ORDER BY seq",
            tenant.merchant.id,
            customer,
        )


async def test_details_are_stored_normalised_and_audited_with_before_and_after(
    portal_platform: Platform, shops: tuple[Tenant, Tenant]
) -> None:
    shop, _ = shops
    jane = await _new_customer(shop)
    assert await get_billing_details(shop, jane) is None
    stored = await _update(portal_platform, shop, jane, US)
    assert stored == US
    assert await get_billing_details(shop, jane) == US
    moved = BillingDetails(
        name="Globalco Ltd", line1=" 10  Downing Street ", city="London", postal_code="sw1a2aa", country="gb"
    )
    stored = await _update(portal_platform, shop, jane, moved)
    assert (stored.line1, stored.postal_code, stored.country) == ("10 Downing Street", "SW1A 2AA", "GB")
    events = await _events(shop, jane)
    assert len(events) == 2
    assert events[0]["before"] is not None and "62701" in str(events[0]["after"])
    last = events[1]
    assert '"postal_code": "SW1A 2AA"' in str(last["after"]) and '"postal_code": "62701"' in str(last["before"])
    assert "line2" not in str(last["after"])  # only the changed fields
    assert last["actor_type"] == "merchant_api_key"


async def test_an_unchanged_write_emits_nothing(portal_platform: Platform, shops: tuple[Tenant, Tenant]) -> None:
    shop, _ = shops
    jane = await _new_customer(shop)
    await _update(portal_platform, shop, jane, US)
    before = len(await _events(shop, jane))
    await _update(portal_platform, shop, jane, US)
    assert len(await _events(shop, jane)) == before


@pytest.mark.parametrize(
    ("details", "field"),
    [
        (BillingDetails(line1="1 Main St", postal_code="6270", country="US"), "postal_code"),
        (BillingDetails(line1="1 Main St", postal_code="ABCDE", country="US"), "postal_code"),
        (BillingDetails(line1="1 Rue", postal_code="7500", country="FR"), "postal_code"),
        (BillingDetails(line1="1 Str", postal_code="1011", country="DE"), "postal_code"),
        (BillingDetails(line1="1 High St", postal_code="12345", country="GB"), "postal_code"),
        (BillingDetails(line1="1 Rue", postal_code="12345", country="CA"), "postal_code"),
        (BillingDetails(line1="1 Main St", country="XX"), "country"),
        (BillingDetails(line1="1 Main St", country="USA"), "country"),
        (BillingDetails(line1="1 Main St", city="Springfield"), "country"),
        (BillingDetails(city="Berlin", country="DE"), "line1"),
        (BillingDetails(country="DE", tax_id="DE12345"), "tax_id"),
        (BillingDetails(country="DE", tax_id="FR12345678901"), "tax_id"),
        (BillingDetails(country="GR", tax_id="GR123456789"), "tax_id"),
        (BillingDetails(country="US", tax_id="12-34<script>"), "tax_id"),
        (BillingDetails(name="Jane\nCooper"), "name"),
        (BillingDetails(name="x" * 201), "name"),
    ],
)
async def test_invalid_details_are_refused_naming_the_field(
    portal_platform: Platform, shops: tuple[Tenant, Tenant], details: BillingDetails, field: str
) -> None:
    shop, _ = shops
    jane = await _new_customer(shop)
    with pytest.raises(BillingDetailsError) as refused:
        await _update(portal_platform, shop, jane, details)
    assert refused.value.field == field


@pytest.mark.parametrize(
    "details",
    [
        BillingDetails(line1="1 Main St", city="Springfield", postal_code="62701-1234", state="IL", country="US"),
        BillingDetails(line1="24 Sussex Dr", city="Ottawa", postal_code="k1m1m4", state="ON", country="CA"),
        BillingDetails(
            line1="Unter den Linden 1", city="Berlin", postal_code="10117", country="DE", tax_id="DE 123 456 789"
        ),
        BillingDetails(
            line1="1 Rue de Rivoli", city="Paris", postal_code="75001", country="FR", tax_id="FRXX123456789"
        ),
        BillingDetails(line1="Syntagma 1", city="Athens", postal_code="105 57", country="GR", tax_id="EL123456789"),
        BillingDetails(line1="1 George St", city="Sydney", postal_code="2000", country="AU", tax_id="51 824 753 556"),
        BillingDetails(name="Only a name"),
        BillingDetails(),
    ],
)
async def test_valid_details_of_several_countries_are_accepted(
    portal_platform: Platform, shops: tuple[Tenant, Tenant], details: BillingDetails
) -> None:
    shop, _ = shops
    jane = await _new_customer(shop)
    stored = await _update(portal_platform, shop, jane, details)
    assert await get_billing_details(shop, jane) == (None if details == BillingDetails() else stored)
    if details.tax_id and details.country in {"DE", "GR"}:
        assert stored.tax_id is not None and " " not in stored.tax_id


async def test_another_merchants_customer_is_not_found(portal_platform: Platform, shops: tuple[Tenant, Tenant]) -> None:
    shop, other = shops
    jane_elsewhere = await customer_id(OTHER, "jane@globalco.com")
    with pytest.raises(NotFoundError):
        await _update(portal_platform, shop, jane_elsewhere, US)
    await _update(portal_platform, other, jane_elsewhere, US)
    assert await get_billing_details(shop, jane_elsewhere) is None
    assert await get_billing_details(other, jane_elsewhere) == US


async def test_the_table_is_tenant_owned_with_forced_row_level_security(shops: tuple[Tenant, Tenant]) -> None:
    rows = await fetch(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'portal_customer_billing'"
    )
    assert rows == [{"relrowsecurity": True, "relforcerowsecurity": True}]
    assert await fetch("SELECT count(*) AS n FROM portal_customer_billing") == [{"n": 0}]
