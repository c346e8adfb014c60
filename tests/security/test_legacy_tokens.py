"""Links minted before link purposes came from plugins still verify and land where they did.

The two tokens below were minted with the token code of the release where purposes were a fixed
list in core (``portal`` and ``update_payment``), for a merchant whose ids, signing key and
secret this test writes into the database. They are checked at a fixed time within their
lifetime, so they stay valid however long this test is kept.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from portal.access.flows import resolve_flow
from portal.access.links import LinkRefusedError, redeem
from portal.access.tokens import Claims, sign
from portal.db.engine import tenant_transaction

ISO = "iso_01kz0legacy0iso00000000000"
MERCHANT = "mer_01kz0legacy0mer00000000000"
CUSTOMER = "cus_01kz0legacy0cus00000000000"
KID = "lk_01kz0legacy0key00000000000"
SECRET = "lsk_legacy-secret-kept-for-the-compatibility-test"
HOST = "t-legacy-shop.portal.localhost"
ISSUED = 1796342400  # 2026-12-04T00:00:00Z, when both were minted
PORTAL_TOKEN = (
    "pt1.lk_01kz0legacy0key00000000000.eyJpc28iOiJpc29fMDFrejBsZWdhY3kwaXNvMDAwMDAwMDAwMDAiLCJtZXJjaGFudCI6Im1lcl8wMW"
    "t6MGxlZ2FjeTBtZXIwMDAwMDAwMDAwMCIsImN1c3RvbWVyIjoiY3VzXzAxa3owbGVnYWN5MGN1czAwMDAwMDAwMDAwIiwicHVycG9zZSI6InBvcn"
    "RhbCIsImZsb3ciOm51bGwsImV4cCI6MTc5NjM0NjAwMCwiaWF0IjoxNzk2MzQyNDAwLCJqdGkiOiJwbF8wMWt6MGxlZ2FjeTBwb3J0YWwwMDAwMD"
    "AwIn0.0kFneSuc0l_TnonVkKfR11bDFtZGN14IAFqq0z9J4mc"
)
UPDATE_PAYMENT_TOKEN = (
    "pt1.lk_01kz0legacy0key00000000000.eyJpc28iOiJpc29fMDFrejBsZWdhY3kwaXNvMDAwMDAwMDAwMDAiLCJtZXJjaGFudCI6Im1lcl8wMW"
    "t6MGxlZ2FjeTBtZXIwMDAwMDAwMDAwMCIsImN1c3RvbWVyIjoiY3VzXzAxa3owbGVnYWN5MGN1czAwMDAwMDAwMDAwIiwicHVycG9zZSI6InVwZG"
    "F0ZV9wYXltZW50IiwiZmxvdyI6bnVsbCwiZXhwIjoxNzk2OTQ3MjAwLCJpYXQiOjE3OTYzNDI0MDAsImp0aSI6InBsXzAxa3owbGVnYWN5MHVwZG"
    "F0ZTAwMDAwMDAifQ.GuW1MKu84vtgMUw16FrgzxarSyUFSmw1L-ZScRabIc0"
)
SOON_AFTER = datetime.fromtimestamp(ISSUED + 60, UTC)


async def _legacy_merchant(platform):
    owner = await asyncpg.connect(platform.settings.database_url)
    try:
        await owner.execute(
            "INSERT INTO portal_iso (id, slug, name) VALUES ($1, 't-legacy', 'Legacy ISO') ON CONFLICT DO NOTHING", ISO
        )
        await owner.execute(
            "INSERT INTO portal_merchant (id, iso_id, slug, name) VALUES ($1, $2, 't-legacy-shop', 'Legacy shop') "
            "ON CONFLICT DO NOTHING",
            MERCHANT,
            ISO,
        )
        await owner.execute(
            "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
            "VALUES ($1, $2, $3, 'jane@globalco.com', 'jane@globalco.com', 'Jane Legacy') ON CONFLICT DO NOTHING",
            CUSTOMER,
            ISO,
            MERCHANT,
        )
        await owner.execute(
            "INSERT INTO portal_plugin_activation (id, iso_id, merchant_id, plugin_key) "
            "VALUES ('pa_01kz0legacy0cards000000000', $1, $2, 'cards') ON CONFLICT DO NOTHING",
            ISO,
            MERCHANT,
        )
        await owner.execute(
            "INSERT INTO portal_signing_key (id, iso_id, merchant_id, secret, is_primary) "
            "VALUES ($1, $2, $3, $4, true) ON CONFLICT DO NOTHING",
            KID,
            ISO,
            MERCHANT,
            SECRET,
        )
    finally:
        await owner.close()
    platform.tenants.invalidate()
    tenant = await platform.tenants.resolve(HOST)
    assert tenant is not None and tenant.merchant.id == MERCHANT
    return tenant


async def test_a_portal_link_minted_before_still_verifies_once(platform) -> None:
    tenant = await _legacy_merchant(platform)
    async with tenant_transaction(ISO):
        redeemed = await redeem(tenant, PORTAL_TOKEN, now=SOON_AFTER)
    assert (redeemed.claims.purpose, redeemed.claims.customer) == ("portal", CUSTOMER)
    with pytest.raises(LinkRefusedError) as refused:
        async with tenant_transaction(ISO):
            await redeem(tenant, PORTAL_TOKEN, now=SOON_AFTER)
    assert refused.value.reason == "used"


async def test_an_update_payment_link_minted_before_still_lands_on_the_card_update(platform) -> None:
    tenant = await _legacy_merchant(platform)
    for _ in range(2):  # reusable until the card is updated, as before
        async with tenant_transaction(ISO):
            redeemed = await redeem(tenant, UPDATE_PAYMENT_TOKEN, now=SOON_AFTER)
    claims = redeemed.claims
    assert claims.purpose == "update_payment"
    default_flow = platform.registry.link_purposes[claims.purpose].default_flow
    assert resolve_flow(platform.registry.link_flows, tenant, claims.flow or default_flow) == "/payment-methods/update"


async def test_a_purpose_no_plugin_declares_is_refused_as_invalid(platform) -> None:
    tenant = await _legacy_merchant(platform)
    claims = Claims(
        iso=ISO, merchant=MERCHANT, customer=CUSTOMER, purpose="switch", flow=None,
        exp=ISSUED + 300, iat=ISSUED, jti="pl_01kz0legacy0switch0000000",
    )  # fmt: skip
    with pytest.raises(LinkRefusedError) as refused:
        async with tenant_transaction(ISO):
            await redeem(tenant, sign(claims, KID, SECRET), now=SOON_AFTER)
    assert refused.value.reason == "invalid"
