"""The cards plugin on a merchant that uses NMI, against a local server speaking NMI's format."""

from __future__ import annotations

import asyncio
import re
import secrets

from plugins.cards.conftest import CSRF, Shopper, cards_of, events_of

from portal.payments.nmi import vault_reference
from portal.testing import apply_tenants, sign_in
from support.nmi_server import NmiServer


async def nmi_shop(platform, tmp_path, nmi: NmiServer, cards: str = "") -> str:
    """A merchant using NMI (the local server) with the cards plugin; returns its host."""
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
[isos.merchants.gateway.settings]
security_key = "{nmi.security_key}"
tokenization_key = "tok-public-1"
base_url = "{nmi.url}"
retry_delay = 0
[isos.merchants.plugins.cards]
{cards}
[[isos.merchants.customers]]
email = "jane@globalco.com"
""",
        tmp_path,
    )
    return f"{slug}.portal.localhost"


async def post_card(client, token: str, path: str = "/payment-methods"):
    form = await client.get("/payment-methods/new")
    csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    return await client.post(path, data={"csrf_token": csrf, "payment_token": token})


def card_of(response) -> str:
    assert response.status_code == 303, response.text
    return re.search(r"card=(pm_[0-9a-z]+)", response.headers["location"]).group(1)  # type: ignore[union-attr]


async def test_cards_are_vaulted_at_nmi_and_removed_there(platform, portal_client, tmp_path, nmi) -> None:
    host = await nmi_shop(platform, tmp_path, nmi)
    client = portal_client(host)
    jane = Shopper(client, await sign_in(platform, client, "jane@globalco.com"))

    async def add(token: str) -> str:
        return card_of(await post_card(client, token))

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

    refused = await post_card(client, nmi.tokenize("4111111111111111", "0120"))  # expired
    page = await jane.follow(refused, "/payment-methods/new?error=gateway_refused")  # NMI: 300 "Card expired"
    assert 'role="alert"' in page.text and "This card could not be saved just now." in page.text

    assert (await jane.post(f"/payment-methods/{first}/remove")).status_code == 303
    assert set(nmi.vault[rows[first]["vault_id"]].billings) == {rows[second]["billing_id"]}
    assert (await jane.post(f"/payment-methods/{second}/remove")).status_code == 303
    assert rows[first]["vault_id"] not in nmi.vault  # the last card took the customer vault record with it

    sent = [request.fields for request in nmi.requests_to("transact")]
    assert all(nmi.security_key not in str(event) for event in await events_of(platform, host, jane.id))
    assert all("ccnumber" not in fields for fields in sent)  # only payment tokens, never card numbers
    types = [event["type"] for event in await events_of(platform, host, jane.id)]
    assert types.count("payment_method.added") == 2 and types.count("payment_method.removed") == 2


async def test_a_card_nmi_refuses_to_delete_stays_on_file(platform, portal_client, tmp_path, nmi) -> None:
    host = await nmi_shop(platform, tmp_path, nmi)
    client = portal_client(host)
    jane = Shopper(client, await sign_in(platform, client, "jane@globalco.com"))
    card = card_of(await post_card(client, nmi.tokenize("4111111111111111", "1230")))
    vault_id = (await cards_of(platform, host, jane.id))[0]["vault_id"]
    real_key, nmi.security_key = nmi.security_key, "rotated-key"  # NMI now answers "Authentication Failed"
    try:
        response = await jane.post(f"/payment-methods/{card}/remove")
    finally:
        nmi.security_key = real_key
    page = await jane.follow(response, f"/payment-methods/{card}/remove?error=remove_refused")
    assert "did not let us remove this card just now, so it is still on file" in page.text
    assert "Try again</button>" in page.text
    row = (await cards_of(platform, host, jane.id))[0]
    assert row["removed_at"] is None and row["is_default"]
    assert vault_id in nmi.vault
    assert "payment_method.removed" not in [event["type"] for event in await events_of(platform, host, jane.id)]
    assert (await jane.post(f"/payment-methods/{card}/remove")).status_code == 303  # NMI answers again
    assert vault_id not in nmi.vault


async def test_two_tabs_adding_a_first_card_at_once_never_break_the_card_on_file(
    platform, portal_client, tmp_path, nmi
) -> None:
    host = await nmi_shop(platform, tmp_path, nmi, cards="settings = { max_cards = 1 }")
    first_tab, second_tab = portal_client(host), portal_client(host)
    customer = await sign_in(platform, first_tab, "jane@globalco.com")
    await sign_in(platform, second_tab, "jane@globalco.com")
    tokens = nmi.tokenize("4111111111111111", "1230"), nmi.tokenize("5555555555554444", "1230")
    forms = [CSRF.search((await tab.get("/payment-methods/new")).text).group(1) for tab in (first_tab, second_tab)]  # type: ignore[union-attr]
    nmi.delay(0.3, endpoint="transact", times=2)  # both reach NMI before either is recorded
    answers = await asyncio.gather(
        *(
            tab.post("/payment-methods", data={"csrf_token": form, "payment_token": token})
            for tab, form, token in zip((first_tab, second_tab), forms, tokens, strict=True)
        )
    )
    locations = sorted(answer.headers["location"].split("&")[0] for answer in answers)
    assert locations == ["/payment-methods?done=added", "/payment-methods?error=limit"]
    on_file = [row for row in await cards_of(platform, host, customer) if row["removed_at"] is None]
    assert len(on_file) == 1
    stored = nmi.vault[on_file[0]["vault_id"]]  # the card on file still exists at the gateway
    assert set(stored.billings) == {on_file[0]["billing_id"]}  # and the refused one was taken out again


async def test_a_vault_record_left_over_at_nmi_does_not_block_a_first_card(
    platform, portal_client, tmp_path, nmi
) -> None:
    host = await nmi_shop(platform, tmp_path, nmi)
    client = portal_client(host)
    customer = await sign_in(platform, client, "jane@globalco.com")
    leftover = nmi.add_customer(vault_reference(customer), billing_id="old1")  # from an earlier attempt
    card = card_of(await post_card(client, nmi.tokenize("4111111111111111", "1230")))
    row = (await cards_of(platform, host, customer))[0]
    assert row["id"] == card and row["vault_id"] == leftover.id
    assert row["billing_id"] in nmi.vault[leftover.id].billings


async def test_the_same_card_again_is_taken_back_out_of_the_nmi_vault(platform, portal_client, tmp_path, nmi) -> None:
    host = await nmi_shop(platform, tmp_path, nmi)
    client = portal_client(host)
    jane = Shopper(client, await sign_in(platform, client, "jane@globalco.com"))
    card = card_of(await post_card(client, nmi.tokenize("4111111111111111", "1230")))
    again = await post_card(client, nmi.tokenize("4111111111111111", "1230"))
    page = await jane.follow(again, f"/payment-methods?error=duplicate&card={card}")
    assert "Visa ending in 1111 is already on file, so it was not added again." in page.text
    rows = await cards_of(platform, host, jane.id)
    assert [row["id"] for row in rows] == [card]
    assert set(nmi.vault[rows[0]["vault_id"]].billings) == {rows[0]["billing_id"]}  # the second entry went again
    assert [event["type"] for event in await events_of(platform, host, jane.id)] == [
        "payment_method.added",
        "payment_method.default_changed",
    ]
