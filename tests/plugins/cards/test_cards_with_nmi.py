"""The cards plugin on a merchant that uses NMI, against a local server speaking NMI's format."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator

import pytest_asyncio
from plugins.cards.conftest import CSRF, Shopper, cards_of, events_of

from portal.testing import apply_tenants, sign_in
from support.nmi_server import NmiServer


@pytest_asyncio.fixture(loop_scope="session")
async def nmi() -> AsyncIterator[NmiServer]:
    server = NmiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_cards_are_vaulted_at_nmi_and_removed_there(platform, portal_client, tmp_path, nmi) -> None:
    slug = f"t-nmi-shop-{secrets.token_hex(3)}"
    await apply_tenants(
        platform,
        f"""
[[isos]]
slug = "{slug}-iso"
name = "NMI ISO"
[[isos.merchants]]
slug = "{slug}"
name = "NMI Shop"
[isos.merchants.gateway]
key = "nmi"
settings = {{ security_key = "{nmi.security_key}", tokenization_key = "tok-public-1", base_url = "{nmi.url}" }}
[isos.merchants.plugins.cards]
[[isos.merchants.customers]]
email = "jane@globalco.com"
""",
        tmp_path,
    )
    host = f"{slug}.portal.localhost"
    client = portal_client(host)
    jane = Shopper(client, await sign_in(platform, client, "jane@globalco.com"))

    async def add(token: str) -> str:
        form = await client.get("/payment-methods/new")
        csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
        response = await client.post("/payment-methods", data={"csrf_token": csrf, "payment_token": token})
        assert response.status_code == 303, response.text
        return re.search(r"card=(pm_[0-9a-z]+)", response.headers["location"]).group(1)  # type: ignore[union-attr]

    first = await add(nmi.tokenize("4111111111111111", "1230"))  # as Collect.js would have tokenized it
    second = await add(nmi.tokenize("5555555555554444", "0831"))
    rows = {row["id"]: row for row in await cards_of(platform, host, jane.id)}
    assert (rows[first]["brand"], rows[first]["last4"], rows[first]["exp_month"], rows[first]["exp_year"]) == (
        "visa",
        "1111",
        12,
        2030,
    )
    assert rows[second]["brand"] == "mastercard" and rows[second]["vault_id"] == rows[first]["vault_id"]
    assert rows[first]["gateway"] == "nmi"
    vault = nmi.vault[rows[first]["vault_id"]]
    assert set(vault.billings) == {rows[first]["billing_id"], rows[second]["billing_id"]}

    expired = nmi.tokenize("4111111111111111", "0120")
    form = await client.get("/payment-methods/new")
    refused = await client.post(
        "/payment-methods", data={"csrf_token": CSRF.search(form.text).group(1), "payment_token": expired}
    )  # type: ignore[union-attr]
    assert refused.status_code == 422 and 'role="alert"' in refused.text

    assert (await jane.post(f"/payment-methods/{first}/remove")).status_code == 303
    assert set(nmi.vault[rows[first]["vault_id"]].billings) == {rows[second]["billing_id"]}
    assert (await jane.post(f"/payment-methods/{second}/remove")).status_code == 303
    assert rows[first]["vault_id"] not in nmi.vault  # the last card took the customer vault record with it

    sent = [request.fields for request in nmi.requests_to("transact")]
    assert all(nmi.security_key not in str(event) for event in await events_of(platform, host, jane.id))
    assert all("ccnumber" not in fields for fields in sent)  # only payment tokens, never card numbers
    types = [event["type"] for event in await events_of(platform, host, jane.id)]
    assert types.count("payment_method.added") == 2 and types.count("payment_method.removed") == 2
