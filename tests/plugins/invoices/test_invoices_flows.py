"""The ``invoice_pay`` deep link: bound to one invoice, it lands on its pay page; after paying, the return URL."""

from __future__ import annotations

from plugins.invoices.conftest import MAIN, OFF, ShopperFactory, World

from portal.api.keys import create_api_key
from portal.db.engine import tenant_transaction


async def _api_key(world: World, slug: str) -> str:
    tenant = world.tenants[slug]
    async with tenant_transaction(tenant.merchant.iso_id):
        _, secret = await create_api_key(
            tenant.merchant.iso_id, tenant.merchant.id, scopes=["portal_sessions:write"],
            known=world.platform.registry.api_scopes,
        )  # fmt: skip
    return secret


async def test_a_pay_link_lands_on_its_invoice_and_returns_after_paying(world: World, shopper: ShopperFactory) -> None:
    jane = await shopper()
    await jane.card()
    invoice = await jane.invoice(342000)
    other = await jane.invoice(1000)
    created = await jane.client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane.customer.id, "flow": {"type": "invoice_pay", "id": invoice.id},
              "return_url": "https://shop.test/account"},
        headers={"Authorization": f"Bearer {await _api_key(world, MAIN)}"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["flow"] == f"invoice_pay:{invoice.id}"
    token = created.json()["url"].rsplit("/access/", 1)[1]
    jane.client.cookies.clear()
    landed = await jane.client.get(f"/access/{token}")
    assert landed.status_code == 303 and landed.headers["location"] == f"/invoices/{invoice.id}/pay"
    form = await jane.form(landed.headers["location"])
    paid = await jane.client.post(f"/invoices/{invoice.id}/pay", data=form)
    assert paid.status_code == 303
    page = await jane.client.get(paid.headers["location"])
    assert f"Thank you! {invoice.number} is paid." in page.text
    assert 'href="https://shop.test/account"' in page.text and "Return to Greenfield Test" in page.text
    assert (await jane.get(other.id)).status == "open"


async def test_a_pay_link_for_someone_elses_invoice_finds_nothing(world: World, shopper: ShopperFactory) -> None:
    jane = await shopper()
    sam = await shopper()
    theirs = await sam.invoice(5000)
    created = await jane.client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane.customer.id, "flow": {"type": "invoice_pay", "id": theirs.id}},
        headers={"Authorization": f"Bearer {await _api_key(world, MAIN)}"},
    )
    assert created.status_code == 201, created.text  # the link proves who the customer is, nothing more
    token = created.json()["url"].rsplit("/access/", 1)[1]
    jane.client.cookies.clear()
    landed = await jane.client.get(f"/access/{token}")
    assert landed.headers["location"] == f"/invoices/{theirs.id}/pay"
    refused = await jane.client.get(landed.headers["location"])
    assert refused.status_code == 404 and "$50.00" not in refused.text
    assert (await sam.get(theirs.id)).status == "open"


async def test_where_the_plugin_is_off_the_flow_is_not_offered(world: World, shopper: ShopperFactory) -> None:
    jane = await shopper(OFF)
    invoice = await jane.invoice(5000)
    created = await jane.client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane.customer.id, "flow": {"type": "invoice_pay", "id": invoice.id}},
        headers={"Authorization": f"Bearer {await _api_key(world, OFF)}"},
    )
    assert created.status_code == 422, created.text
