"""The NMI adapter against a local server speaking NMI's Payment API and Query API formats."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
import pytest_asyncio

from portal.payments.gateway import (
    GatewayDeclinedError,
    GatewayResponse,
    GatewayUnavailableError,
    Money,
    PaymentGatewayAdapter,
    VaultCustomer,
    VaultEntry,
    classify,
)
from portal.payments.nmi import NMI_GATEWAY, NmiGateway, NmiSettings, nmi_amount, parse_answer, vault_reference
from portal.tenancy.models import Brand, MerchantView
from support.nmi_server import NmiServer

MERCHANT = MerchantView(
    id="mer_01jd9zk3x7aaaaaaaaaaaaaaaa",
    iso_id="iso_01jd9zk3x7aaaaaaaaaaaaaaaa",
    slug="t-cafe",
    name="Café",
    timezone="Europe/Paris",
    locale="fr_FR",
    theme_key="base",
    brand=Brand(color="#2e7d32", contrast_color="#ffffff"),
)
JANE = VaultCustomer(customer_id="cus_01jd9zk3x7jane00000000000", email="jane@globalco.test", name="Jane van Dijk")
TOKENIZATION_KEY = "5mN8N7-jhr55W-N22pxX-uAW2s9"
VISA, MASTERCARD, AMEX = "4111111111111111", "5431111111111111", "371449635398431"


def settings(server: NmiServer, **overrides: Any) -> NmiSettings:
    values = {
        "security_key": server.security_key,
        "tokenization_key": TOKENIZATION_KEY,
        "base_url": server.url,
        "timeout": 2.0,
        "retry_delay": 0.0,
    } | overrides
    return msgspec.convert(values, NmiSettings, strict=True)


@pytest_asyncio.fixture(loop_scope="session")
async def connect(nmi: NmiServer) -> AsyncIterator[Callable[..., NmiGateway]]:
    adapters: list[NmiGateway] = []

    def make(**overrides: Any) -> NmiGateway:
        adapter = NmiGateway(settings(nmi, **overrides), MERCHANT)
        adapters.append(adapter)
        return adapter

    try:
        yield make
    finally:
        for adapter in adapters:
            await adapter.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(connect: Callable[..., NmiGateway]) -> NmiGateway:
    return connect()


async def first_card(gateway: NmiGateway, nmi: NmiServer, number: str = VISA, **card: Any) -> VaultEntry:
    token = nmi.tokenize(number, **card)
    return await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_01first", customer=JANE)


# ---- settings and hosted fields ---------------------------------------------------------------


def test_settings_defaults_and_the_registered_gateway() -> None:
    values = {"security_key": "s3cr3t-key", "tokenization_key": TOKENIZATION_KEY}
    parsed = msgspec.convert(values, NMI_GATEWAY.settings, strict=True)
    assert isinstance(parsed, NmiSettings)
    assert parsed.base_url == "https://secure.nmi.com"
    assert parsed.collect_js_url == "https://secure.nmi.com/token/Collect.js"
    assert (parsed.timeout, parsed.max_attempts, parsed.retry_delay) == (20.0, 3, 1.0)
    assert "s3cr3t-key" not in repr(parsed) and TOKENIZATION_KEY in repr(parsed)
    assert msgspec.convert(values | {"timeout": 5}, NmiSettings, strict=True).timeout == 5.0

    assert NMI_GATEWAY.key == "nmi" and NMI_GATEWAY.title == "NMI"
    adapter = NMI_GATEWAY.factory(parsed, MERCHANT)
    assert isinstance(adapter, NmiGateway) and isinstance(adapter, PaymentGatewayAdapter)
    assert adapter.key == "nmi"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"security_key": None}, "security_key"),
        ({"security_key": ""}, "security_key"),
        ({"security_key": "has space"}, "security_key"),
        ({"tokenization_key": None}, "tokenization_key"),
        ({"base_url": "http://secure.nmi.com"}, "base_url must be an https URL"),
        ({"base_url": "ftp://127.0.0.1"}, "base_url must be an https URL"),
        ({"base_url": "https://user:pw@secure.nmi.com"}, "without credentials"),
        ({"base_url": "https://secure.nmi.com?x=1"}, "without credentials, query"),
        ({"base_url": "https://"}, "base_url must"),
        ({"base_url": "https://secure.nmi.com:notaport"}, "invalid port"),
        ({"collect_js_url": "http://secure.nmi.com/token/Collect.js"}, "collect_js_url must be an https URL"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 600}, "timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 10}, "max_attempts"),
        ({"retry_delay": -1}, "retry_delay"),
        ({"username": "demo"}, "unknown field `username`"),
    ],
)
def test_settings_are_validated(changes: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"security_key": "key", "tokenization_key": TOKENIZATION_KEY} | changes
    values = {name: value for name, value in values.items() if value is not None}
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(values, NmiSettings, strict=True)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8123", "http://localhost:9000/", "https://gw.example.test/nmi"])
def test_loopback_may_use_plain_http(base_url: str) -> None:
    values = {"security_key": "key", "tokenization_key": TOKENIZATION_KEY, "base_url": base_url}
    assert msgspec.convert(values, NmiSettings, strict=True).base_url == base_url


@pytest.mark.parametrize(
    "url",
    [
        "https://secure.nmi.com;frame-ancestors *",
        "https://secure.nmi.com;frame-ancestors",
        "https://evil.test, *",
        "https://evil.test,*",
        "https://*",
        "https://*.nmi.com",
        "https://secure.nmi.com\n",
        "https://secure.nmi.com/\tx",
        "https://secure.nmi.com\\@evil.test",
        "https://sécure.nmi.com",
        "https://-secure.nmi.com",
        "https://secure-.nmi.com",
        "https://secure..nmi.com",
        "https://secure.nmi.com.",
        "https://" + "a" * 64 + ".nmi.com",
        "https://1.2.3",
        "https://0x7f.1",
        "https://[fe80::1%25eth0]",
        "https://[::1]evil",
        "https://secure.nmi.com:0",
        "https://secure.nmi.com:65536",
        "https://secure.nmi.com:",
        "https://secure.nmi.com#x",
        "https://secure.nmi.com/?",
        "http://[::2]",
        "https://secure.nmi.com/token/'Collect\".js",
    ],
)
@pytest.mark.parametrize("setting", ["base_url", "collect_js_url"])
def test_urls_that_could_reach_into_a_csp_are_refused(setting: str, url: str) -> None:
    values = {"security_key": "key", "tokenization_key": TOKENIZATION_KEY, setting: url}
    with pytest.raises(msgspec.ValidationError, match=setting):
        msgspec.convert(values, NmiSettings, strict=True)


@pytest.mark.parametrize(
    ("collect_js_url", "base_url", "origins"),
    [
        ("https://secure.nmi.com/token/Collect.js", "https://secure.nmi.com", ("https://secure.nmi.com",)),
        ("HTTPS://Secure.NMI.com:443/token/Collect.js", "https://secure.nmi.com/", ("https://secure.nmi.com",)),
        (
            "https://tokens.example-gw.test:8443/Collect.js",
            "https://10.0.0.7:9443/nmi",
            ("https://tokens.example-gw.test:8443", "https://10.0.0.7:9443"),
        ),
        ("https://[2001:DB8::1]/Collect.js", "http://[::1]:8123", ("https://[2001:db8::1]", "http://[::1]:8123")),
        ("http://localhost:8000/Collect.js", "http://127.0.0.1:80", ("http://localhost:8000", "http://127.0.0.1")),
    ],
)
async def test_origins_are_built_from_the_parsed_host_and_port(
    collect_js_url: str, base_url: str, origins: tuple[str, ...]
) -> None:
    values = {
        "security_key": "k",
        "tokenization_key": TOKENIZATION_KEY,
        "collect_js_url": collect_js_url,
        "base_url": base_url,
    }
    gateway = NmiGateway(msgspec.convert(values, NmiSettings, strict=True))
    try:
        fields = gateway.hosted_fields("#000000")
        assert fields.origins == origins and fields.script_url == collect_js_url
    finally:
        await gateway.aclose()


async def test_hosted_fields_are_collect_js_inline_with_the_origins_to_allow(nmi: NmiServer) -> None:
    default = NmiGateway(msgspec.convert({"security_key": "k", "tokenization_key": TOKENIZATION_KEY}, NmiSettings))
    try:
        fields = default.hosted_fields("#2e7d32")
        assert fields.script_url == "https://secure.nmi.com/token/Collect.js"
        assert fields.origins == ("https://secure.nmi.com",)
        assert fields.script_attributes == {"data-tokenization-key": TOKENIZATION_KEY, "data-variant": "inline"}
        assert fields.test_mode is False  # real money moves
    finally:
        await default.aclose()

    local = NmiGateway(settings(nmi, collect_js_url="https://Tokens.Example.test/token/Collect.js"))
    try:
        assert local.hosted_fields("#000000").origins == ("https://tokens.example.test", nmi.url)
        assert nmi.security_key not in local.hosted_fields("#000000").script_attributes.values()
    finally:
        await local.aclose()


# ---- the vault --------------------------------------------------------------------------------


async def test_a_first_card_creates_a_vault_record_named_after_the_customer(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    token = nmi.tokenize(VISA, "0931")
    entry = await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_01abc", customer=JANE)

    assert entry.vault_id == "cus01jd9zk3x7jane00000000000" == vault_reference(JANE.customer_id)
    assert entry.billing_id == "pm01abc"
    assert (entry.card.brand, entry.card.last4, entry.card.exp_month, entry.card.exp_year) == ("visa", "1111", 9, 2031)

    record = nmi.vault[entry.vault_id]
    assert (record.first_name, record.last_name, record.email) == ("Jane", "van Dijk", "jane@globalco.test")
    assert list(record.billings) == ["pm01abc"]

    assert entry.new_vault  # this call created the record

    check, add, read = nmi.requests
    assert check.path == "/api/query.php" and check.fields["customer_vault_id"] == entry.vault_id
    assert add.path == "/api/transact.php" and add.method == "POST"
    assert add.fields["customer_vault"] == "add_customer" and add.fields["payment_token"] == token
    assert add.fields["customer_vault_id"] == entry.vault_id and add.fields["billing_id"] == "pm01abc"
    assert read.path == "/api/query.php"
    assert {name: read.fields[name] for name in ("report_type", "customer_vault_id", "ver")} == {
        "report_type": "customer_vault",
        "customer_vault_id": entry.vault_id,
        "ver": "2",
    }


async def test_several_billing_ids_live_in_one_vault_record(gateway: NmiGateway, nmi: NmiServer) -> None:
    first = await first_card(gateway, nmi)
    second = await gateway.vault_add(
        payment_token=nmi.tokenize(MASTERCARD, "1229"), vault_id=first.vault_id, billing_id="pm_02", customer=JANE
    )
    third = await gateway.vault_add(
        payment_token=nmi.tokenize(AMEX, "0330"), vault_id=first.vault_id, billing_id="pm_03", customer=JANE
    )
    assert first.vault_id == second.vault_id == third.vault_id
    assert (first.new_vault, second.new_vault, third.new_vault) == (True, False, False)
    assert [(e.billing_id, e.card.brand, e.card.last4) for e in (first, second, third)] == [
        ("pm01first", "visa", "1111"),
        ("pm02", "mastercard", "1111"),
        ("pm03", "amex", "8431"),
    ]
    assert list(nmi.vault[first.vault_id].billings) == ["pm01first", "pm02", "pm03"]
    assert [request.fields.get("customer_vault") for request in nmi.requests_to("transact")] == [
        "add_customer",
        "add_billing",
        "add_billing",
    ]

    response = await gateway.sale(
        vault_id=first.vault_id, billing_id=third.billing_id, amount=Money(1500, "USD"), order_id="inv_1"
    )
    assert response.approved
    (charge,) = nmi.charges
    assert charge.billing_id == "pm03" and charge.card.number == AMEX


async def test_an_update_replaces_the_card_behind_a_billing_id(gateway: NmiGateway, nmi: NmiServer) -> None:
    entry = await first_card(gateway, nmi)
    updated = await gateway.vault_update(
        payment_token=nmi.tokenize(MASTERCARD, "0832"), vault_id=entry.vault_id, billing_id=entry.billing_id
    )
    assert (updated.vault_id, updated.billing_id) == (entry.vault_id, entry.billing_id)
    assert (updated.card.brand, updated.card.exp_month, updated.card.exp_year) == ("mastercard", 8, 2032)
    assert nmi.requests_to("transact")[-1].fields["customer_vault"] == "update_billing"

    with pytest.raises(GatewayDeclinedError) as refused:
        await gateway.vault_update(payment_token="not-a-token", vault_id=entry.vault_id, billing_id=entry.billing_id)
    assert refused.value.response.outcome == "error" and refused.value.response.response_code == 300


async def test_deleting_the_last_card_deletes_the_customer_record(gateway: NmiGateway, nmi: NmiServer) -> None:
    first = await first_card(gateway, nmi)
    second = await gateway.vault_add(
        payment_token=nmi.tokenize(MASTERCARD), vault_id=first.vault_id, billing_id="pm_02", customer=JANE
    )
    await gateway.vault_delete(vault_id=first.vault_id, billing_id=first.billing_id, last_in_vault=False)
    assert list(nmi.vault[first.vault_id].billings) == ["pm02"]
    assert nmi.requests_to("transact")[-1].fields["customer_vault"] == "delete_billing"

    await gateway.vault_delete(vault_id=second.vault_id, billing_id=second.billing_id, last_in_vault=True)
    assert first.vault_id not in nmi.vault
    last = nmi.requests_to("transact")[-1].fields
    assert last["customer_vault"] == "delete_customer" and "billing_id" not in last

    # deleting what is already gone succeeds (a retry after a lost answer, say)
    sent = len(nmi.requests_to("transact"))
    await gateway.vault_delete(vault_id=second.vault_id, billing_id=second.billing_id, last_in_vault=True)
    assert len(nmi.requests_to("transact")) > sent  # NMI was asked, and "not found" counted as deleted


async def test_deleting_a_card_or_record_already_gone_succeeds(gateway: NmiGateway, nmi: NmiServer) -> None:
    entry = await first_card(gateway, nmi)
    await gateway.vault_delete(vault_id=entry.vault_id, billing_id="pm_gone", last_in_vault=False)
    (refused,) = [r for r in nmi.requests_to("transact") if r.fields["customer_vault"] == "delete_billing"]
    assert refused.fields["billing_id"] == "pmgone"  # NMI answered "Invalid Billing Id": gone counts as deleted
    assert list(nmi.vault[entry.vault_id].billings) == [entry.billing_id]

    sent = len(nmi.requests_to("transact"))
    await gateway.vault_delete(vault_id="cus01nosuchrecord", billing_id="pm_1", last_in_vault=False)
    await gateway.vault_delete(vault_id="cus01nosuchrecord", billing_id="pm_1", last_in_vault=True)
    asked = [r.fields["customer_vault"] for r in nmi.requests_to("transact")[sent:]]
    assert "delete_billing" in asked and "delete_customer" in asked


REFUSAL = "response=3&responsetext=Vault change not allowed&response_code=300"


@pytest.mark.parametrize(("last_in_vault", "action"), [(False, "delete_billing"), (True, "delete_customer")])
async def test_a_refused_delete_that_leaves_the_card_raises(
    gateway: NmiGateway, nmi: NmiServer, last_in_vault: bool, action: str
) -> None:
    entry = await first_card(gateway, nmi)
    nmi.garble(REFUSAL, processed=False, endpoint="transact", match={"customer_vault": action})
    with pytest.raises(GatewayDeclinedError) as refused:
        await gateway.vault_delete(vault_id=entry.vault_id, billing_id=entry.billing_id, last_in_vault=last_in_vault)
    assert refused.value.response.response_text == "Vault change not allowed"
    assert list(nmi.vault[entry.vault_id].billings) == [entry.billing_id]  # the card is still there


@pytest.mark.parametrize("last_in_vault", [False, True])
async def test_a_delete_whose_answer_is_lost_is_found_done_not_resent(
    gateway: NmiGateway, nmi: NmiServer, last_in_vault: bool
) -> None:
    entry = await first_card(gateway, nmi)
    await gateway.vault_add(payment_token=nmi.tokenize(), vault_id=entry.vault_id, billing_id="pm_02", customer=JANE)
    nmi.drop(endpoint="transact", match={"customer_vault": "delete_customer" if last_in_vault else "delete_billing"})
    await gateway.vault_delete(vault_id=entry.vault_id, billing_id=entry.billing_id, last_in_vault=last_in_vault)
    assert len([r for r in nmi.requests_to("transact") if r.fields["customer_vault"].startswith("delete")]) == 1
    if last_in_vault:
        assert entry.vault_id not in nmi.vault
    else:
        assert list(nmi.vault[entry.vault_id].billings) == ["pm02"]


async def test_a_delete_that_never_arrived_is_sent_again(gateway: NmiGateway, nmi: NmiServer) -> None:
    entry = await first_card(gateway, nmi)
    nmi.drop(processed=False, endpoint="transact", match={"customer_vault": "delete_customer"})
    await gateway.vault_delete(vault_id=entry.vault_id, billing_id=entry.billing_id, last_in_vault=True)
    assert entry.vault_id not in nmi.vault
    assert [r.fault for r in nmi.requests_to("transact") if r.fields["customer_vault"] == "delete_customer"] == [
        "drop",
        None,
    ]


async def test_a_delete_with_a_lost_answer_that_cannot_be_looked_up_is_unavailable(
    connect: Callable[..., NmiGateway], nmi: NmiServer
) -> None:
    entry = await first_card(connect(), nmi)
    gateway = connect(timeout=0.2, max_attempts=3)
    nmi.drop(processed=False, endpoint="transact", match={"customer_vault": "delete_billing"})
    nmi.hang(5.0, endpoint="query", times=None)
    with pytest.raises(GatewayUnavailableError):
        await gateway.vault_delete(vault_id=entry.vault_id, billing_id=entry.billing_id, last_in_vault=False)
    assert len([r for r in nmi.requests_to("transact") if r.fields["customer_vault"] == "delete_billing"]) == 1
    assert list(nmi.vault[entry.vault_id].billings) == [entry.billing_id]


async def test_a_refused_card_raises_with_the_parsed_response(gateway: NmiGateway, nmi: NmiServer) -> None:
    with pytest.raises(GatewayDeclinedError) as expired:
        await first_card(gateway, nmi, exp="0120")
    assert expired.value.response.outcome == "error"
    assert (expired.value.response.response_code, expired.value.response.response_text) == (300, "Card expired")
    assert nmi.vault == {}

    with pytest.raises(GatewayDeclinedError) as unknown:
        await gateway.vault_add(payment_token="forged", vault_id=None, billing_id="pm_1", customer=JANE)
    assert unknown.value.response.response_text == "Invalid payment token"


async def test_a_vault_record_left_from_before_gets_the_card_as_another_billing_id(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    nmi.add_customer(vault_reference(JANE.customer_id), billing_id="old1")
    entry = await first_card(gateway, nmi, MASTERCARD)
    assert entry.vault_id == vault_reference(JANE.customer_id) and entry.card.brand == "mastercard"
    assert not entry.new_vault  # it joined the record: the caller must never delete it whole
    assert list(nmi.vault[entry.vault_id].billings) == ["old1", "pm01first"]
    kinds = [request.fields["customer_vault"] for request in nmi.requests_to("transact")]
    assert kinds == ["add_billing"]  # the record was read first: no doomed add_customer


CUSTOMER_VAULT = {"report_type": "customer_vault"}
NO_RECORD = '<?xml version="1.0" encoding="UTF-8"?>\n<nm_response></nm_response>'


async def test_a_record_created_meanwhile_is_joined_after_a_duplicate_refusal(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    nmi.garble(NO_RECORD, processed=False, endpoint="query", match=CUSTOMER_VAULT)  # absent when first read
    nmi.add_customer(vault_reference(JANE.customer_id), billing_id="other1")  # another tab's add, say
    entry = await first_card(gateway, nmi)
    assert not entry.new_vault
    kinds = [request.fields["customer_vault"] for request in nmi.requests_to("transact")]
    assert kinds == ["add_customer", "add_billing"]
    assert list(nmi.vault[entry.vault_id].billings) == ["other1", "pm01first"]


async def test_a_duplicate_refusal_joins_the_record_when_it_could_not_be_read_first(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    nmi.garble("<html>busy</html>", processed=False, endpoint="query", match=CUSTOMER_VAULT)
    nmi.add_customer(vault_reference(JANE.customer_id), billing_id="old1")
    entry = await first_card(gateway, nmi)
    assert not entry.new_vault and list(nmi.vault[entry.vault_id].billings) == ["old1", "pm01first"]


async def test_a_card_an_earlier_call_stored_is_returned_without_spending_the_token(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    nmi.add_customer(vault_reference(JANE.customer_id), billing_id="pm01first", number=MASTERCARD)
    entry = await first_card(gateway, nmi)
    assert (entry.billing_id, entry.card.brand, entry.new_vault) == ("pm01first", "mastercard", False)
    assert nmi.requests_to("transact") == [] and nmi.used_tokens == set()


async def test_a_card_found_after_a_refusal_is_not_claimed_without_a_lost_send(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    nmi.garble(NO_RECORD, processed=False, endpoint="query", match=CUSTOMER_VAULT)  # first read: absent
    nmi.add_customer(vault_reference(JANE.customer_id), billing_id="pm01first")  # yet there, with this card
    entry = await first_card(gateway, nmi)
    assert not entry.new_vault  # add_customer was refused outright: this call created nothing
    assert [request.fields["customer_vault"] for request in nmi.requests_to("transact")] == ["add_customer"]


async def test_a_vault_add_whose_answer_is_lost_is_found_not_resent(gateway: NmiGateway, nmi: NmiServer) -> None:
    nmi.drop(endpoint="transact", match={"customer_vault": "add_customer"})
    entry = await first_card(gateway, nmi)
    assert entry.card.last4 == "1111"
    assert entry.new_vault  # the record was absent before: the lost add_customer created it
    assert len(nmi.requests_to("transact")) == 1  # the token was used once: the lookup found the card
    assert len(nmi.vault[entry.vault_id].billings) == 1


async def test_a_lost_add_is_not_claimed_as_new_when_the_record_could_not_be_read_first(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    nmi.garble("<html>busy</html>", processed=False, endpoint="query", match=CUSTOMER_VAULT)
    nmi.drop(endpoint="transact", match={"customer_vault": "add_customer"})
    entry = await first_card(gateway, nmi)
    assert not entry.new_vault  # it may have been there before this call: False is the safe answer
    assert entry.vault_id in nmi.vault and len(nmi.requests_to("transact")) == 1


async def test_a_lost_add_that_lands_late_still_counts_as_creating_the_record(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    nmi.delay(0.0, endpoint="query", match=CUSTOMER_VAULT)  # the first read gets through: no record
    nmi.garble(NO_RECORD, endpoint="query", match=CUSTOMER_VAULT)  # the lookup misses the slow add
    nmi.drop(endpoint="transact", match={"customer_vault": "add_customer"})
    entry = await first_card(gateway, nmi)
    assert entry.new_vault  # the resend was refused as a duplicate of this call's own first send
    kinds = [(request.fields["customer_vault"], request.fault) for request in nmi.requests_to("transact")]
    assert kinds == [("add_customer", "drop"), ("add_customer", None)]
    assert list(nmi.vault[entry.vault_id].billings) == ["pm01first"]


async def test_a_vault_add_that_never_arrived_is_sent_again(gateway: NmiGateway, nmi: NmiServer) -> None:
    nmi.drop(processed=False, endpoint="transact")
    entry = await first_card(gateway, nmi)
    assert entry.card.brand == "visa"
    assert [request.fault for request in nmi.requests_to("transact")] == ["drop", None]


async def test_an_unreadable_card_record_takes_the_card_back_out(gateway: NmiGateway, nmi: NmiServer) -> None:
    nmi.garble("<nm_response><customer_vault><customer id=", endpoint="query", times=None)
    with pytest.raises(GatewayUnavailableError):
        await first_card(gateway, nmi)
    assert nmi.vault == {}  # added, unreadable, deleted again
    assert nmi.requests_to("transact")[-1].fields["customer_vault"] == "delete_customer"


async def test_an_unreadable_card_in_a_joined_record_takes_only_the_card_out(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    nmi.add_customer(vault_reference(JANE.customer_id), billing_id="old1")
    nmi.delay(0.0, endpoint="query", match=CUSTOMER_VAULT)  # the first read shows the record
    nmi.garble("<nm_response><customer_vault><customer id=", endpoint="query", times=None)
    with pytest.raises(GatewayUnavailableError):
        await first_card(gateway, nmi)
    assert list(nmi.vault[vault_reference(JANE.customer_id)].billings) == ["old1"]  # the record stays
    assert nmi.requests_to("transact")[-1].fields["customer_vault"] == "delete_billing"


ENTITY_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE nm_response [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><nm_response><customer_vault>&b;</customer_vault></nm_response>'
)


async def test_an_answer_with_a_dtd_is_refused_unread(gateway: NmiGateway, nmi: NmiServer) -> None:
    nmi.garble(ENTITY_BOMB, endpoint="query", times=None)
    with pytest.raises(GatewayUnavailableError, match="unreadable"):
        await first_card(gateway, nmi)
    assert nmi.vault == {}  # the card went back out of the vault


# ---- sales ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome", "bucket", "stop_recurring"),
    [
        (100, "approved", "approved", False),
        (202, "declined", "retryable", False),
        (223, "declined", "final", False),
        (261, "declined", "final", True),
        (262, "declined", "final", True),
        (300, "error", "final", False),
        (400, "error", "retryable", False),
    ],
)
async def test_sale_results_follow_the_documented_codes(
    gateway: NmiGateway, nmi: NmiServer, code: int, outcome: str, bucket: str, stop_recurring: bool
) -> None:
    entry = await first_card(gateway, nmi, sale_code=code)
    response = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(2599, "USD"), order_id=f"inv_{code}"
    )
    (sale,) = nmi.sales
    assert response.outcome == outcome and response.response_code == code
    assert classify(response) == bucket
    assert response.stop_recurring is stop_recurring
    assert not (response.stop_recurring and response.retryable)
    assert response.response_text == sale.response_text and response.order_id == f"inv_{code}"
    assert response.transaction_id == sale.transaction_id
    assert response.authorization_code == (sale.authorization_code or None)
    assert (response.authorization_code is not None) is (code == 100)


@pytest.mark.parametrize(
    ("amount", "sent"),
    [
        (Money(1234, "USD"), "12.34"),
        (Money(5, "USD"), "0.05"),
        (Money(1000, "JPY"), "1000"),
        (Money(1, "BHD"), "0.001"),
    ],
)
async def test_amounts_are_sent_with_the_currency_decimals(
    gateway: NmiGateway, nmi: NmiServer, amount: Money, sent: str
) -> None:
    entry = await first_card(gateway, nmi)
    response = await gateway.sale(vault_id=entry.vault_id, billing_id=entry.billing_id, amount=amount, order_id="o1")
    assert response.approved
    (charge,) = nmi.charges
    assert (charge.amount, charge.currency) == (sent, amount.currency)
    request = nmi.requests_to("transact")[-1].fields
    assert (request["type"], request["amount"], request["currency"], request["orderid"]) == (
        "sale",
        sent,
        amount.currency,
        "o1",
    )


@pytest.mark.parametrize("amount", [Money(0, "USD"), Money(-5, "USD"), Money(100, "usd"), Money(100, "ZZZ")])
def test_amounts_that_cannot_be_charged_are_refused(amount: Money) -> None:
    with pytest.raises(ValueError):
        nmi_amount(amount)


@pytest.mark.parametrize(
    ("amount", "order_id", "billing_id", "text", "answered_order"),
    [
        (Money(0, "USD"), "inv_1", "pm_1", "Invalid amount", "inv_1"),
        (Money(-5, "USD"), "inv_1", "pm_1", "Invalid amount", "inv_1"),
        (Money(100, "usd"), "inv_1", "pm_1", "Invalid currency", "inv_1"),
        (Money(100, "ZZZ"), "inv_1", "pm_1", "Invalid currency", "inv_1"),
        (Money(100, "USD"), "", "pm_1", "Invalid order id", None),
        (Money(100, "USD"), "   ", "pm_1", "Invalid order id", None),
        (Money(100, "USD"), "x" * 201, "pm_1", "Invalid order id", None),
        (Money(100, "USD"), "inv_1", "_-_", "Invalid Billing Id", "inv_1"),
    ],
)
async def test_a_sale_that_cannot_be_sent_gets_the_gateway_error_answer(
    gateway: NmiGateway,
    nmi: NmiServer,
    amount: Money,
    order_id: str,
    billing_id: str,
    text: str,
    answered_order: str | None,
) -> None:
    response = await gateway.sale(vault_id="cus01", billing_id=billing_id, amount=amount, order_id=order_id)
    assert response == GatewayResponse(outcome="error", response_code=300, response_text=text, order_id=answered_order)
    assert classify(response) == "final" and not response.retryable
    assert nmi.requests == []  # nothing sent, not even a lookup


async def test_a_sale_whose_connection_dropped_charges_exactly_once(gateway: NmiGateway, nmi: NmiServer) -> None:
    entry = await first_card(gateway, nmi)
    nmi.drop(endpoint="transact", match={"type": "sale"})  # processed, then the connection closes
    response = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_77"
    )
    assert response.approved and response.order_id == "inv_77"
    (charge,) = nmi.charges
    assert response.transaction_id == charge.transaction_id
    assert response.authorization_code == charge.authorization_code
    assert len([r for r in nmi.requests_to("transact") if r.fields.get("type") == "sale"]) == 1
    lookups = [r.fields for r in nmi.requests_to("query") if "order_id" in r.fields]
    assert [fields["order_id"] for fields in lookups] == ["inv_77", "inv_77"]  # before sending, and after the drop


async def test_a_sale_that_never_arrived_is_sent_again_once(gateway: NmiGateway, nmi: NmiServer) -> None:
    entry = await first_card(gateway, nmi)
    nmi.drop(processed=False, endpoint="transact", match={"type": "sale"})
    response = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_78"
    )
    assert response.approved
    assert len(nmi.charges) == 1
    assert [r.fault for r in nmi.requests_to("transact") if r.fields.get("type") == "sale"] == ["drop", None]


async def test_a_slow_answer_is_found_by_order_id(connect: Callable[..., NmiGateway], nmi: NmiServer) -> None:
    entry = await first_card(connect(), nmi)
    gateway = connect(timeout=0.3)
    nmi.delay(1.0, endpoint="transact", match={"type": "sale"})
    response = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_79"
    )
    assert response.approved and len(nmi.charges) == 1


async def test_a_declined_sale_whose_answer_was_lost_is_reported_not_retried(
    gateway: NmiGateway, nmi: NmiServer
) -> None:
    entry = await first_card(gateway, nmi, sale_code=202)
    nmi.drop(endpoint="transact", match={"type": "sale"})
    response = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_80"
    )
    assert (response.outcome, response.response_code) == ("declined", 202)
    assert len(nmi.sales) == 1


async def test_the_same_order_is_never_charged_twice(gateway: NmiGateway, nmi: NmiServer) -> None:
    entry = await first_card(gateway, nmi)
    charge = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_81"
    )
    again = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_81"
    )
    assert again == charge and len(nmi.charges) == 1


async def test_a_retry_after_a_soft_decline_is_sent(gateway: NmiGateway, nmi: NmiServer) -> None:
    entry = await first_card(gateway, nmi, sale_code=202)
    first = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_82"
    )
    nmi.vault[entry.vault_id].billings[entry.billing_id].card.sale_code = 100  # funds arrived
    second = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_82"
    )
    assert (first.response_code, second.response_code) == (202, 100)
    assert len(nmi.sales) == 2 and len(nmi.charges) == 1


async def test_no_answer_at_all_is_unavailable_and_charges_nothing(
    connect: Callable[..., NmiGateway], nmi: NmiServer
) -> None:
    entry = await first_card(connect(), nmi)
    gateway = connect(timeout=0.2, max_attempts=2)
    nmi.hang(5.0, times=None)
    with pytest.raises(GatewayUnavailableError):
        await gateway.sale(
            vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_83"
        )
    with pytest.raises(GatewayUnavailableError):
        await gateway.vault_add(payment_token=nmi.tokenize(), vault_id=entry.vault_id, billing_id="pm_2", customer=JANE)
    assert nmi.sales == []


async def test_a_sale_that_may_have_arrived_is_not_resent_when_it_cannot_be_looked_up(
    connect: Callable[..., NmiGateway], nmi: NmiServer
) -> None:
    entry = await first_card(connect(), nmi)
    gateway = connect(timeout=0.2, max_attempts=3)
    nmi.delay(0.0, endpoint="query", match={"order_id": "inv_84"})  # the lookup before sending gets through
    nmi.hang(5.0, endpoint="query", match={"order_id": "inv_84"}, times=None)  # later ones do not
    nmi.hang(5.0, endpoint="transact", match={"type": "sale"}, times=None)
    with pytest.raises(GatewayUnavailableError):
        await gateway.sale(
            vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_84"
        )
    sends = [r for r in nmi.requests_to("transact") if r.fields.get("type") == "sale"]
    assert len(sends) == 1  # sent once; every later lookup went unanswered, so nothing was resent


async def test_an_unreachable_gateway_is_unavailable(nmi: NmiServer) -> None:
    await nmi.stop()
    gateway = NmiGateway(settings(nmi, max_attempts=2))
    try:
        with pytest.raises(GatewayUnavailableError):
            await gateway.vault_add(payment_token="t", vault_id=None, billing_id="pm_1", customer=JANE)
        with pytest.raises(GatewayUnavailableError):
            await gateway.sale(vault_id="v", billing_id="b", amount=Money(100, "USD"), order_id="o")
    finally:
        await gateway.aclose()


async def test_a_wrong_security_key_is_an_error_result(connect: Callable[..., NmiGateway], nmi: NmiServer) -> None:
    good = await first_card(connect(), nmi)
    gateway = connect(security_key="wrong-key")
    with pytest.raises(GatewayDeclinedError) as refused:
        await gateway.vault_add(payment_token=nmi.tokenize(), vault_id=None, billing_id="pm_1", customer=JANE)
    assert refused.value.response.outcome == "error"
    assert (refused.value.response.response_code, refused.value.response.response_text) == (
        300,
        "Authentication Failed",
    )

    response = await gateway.sale(
        vault_id=good.vault_id, billing_id=good.billing_id, amount=Money(990, "USD"), order_id="inv_85"
    )
    assert (response.outcome, response.response_code, response.response_text) == ("error", 300, "Authentication Failed")
    assert classify(response) == "final" and nmi.sales == []


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>502 Bad Gateway</body></html>",
        "response=7&responsetext=x&response_code=100",
        "response=1&responsetext=SUCCESS&response_code=abc",
        "response=1&response_code=100",
        "response=1&response=2&responsetext=x&response_code=100",
        "",
    ],
)
async def test_unreadable_answers_are_unavailable(gateway: NmiGateway, nmi: NmiServer, body: str) -> None:
    entry = await first_card(gateway, nmi)
    nmi.garble(body, processed=False, endpoint="transact", times=None)
    with pytest.raises(GatewayUnavailableError):
        await gateway.vault_update(payment_token=nmi.tokenize(), vault_id=entry.vault_id, billing_id=entry.billing_id)
    with pytest.raises(GatewayUnavailableError):
        parse_answer(body)


def test_a_documented_answer_parses_strictly() -> None:
    response, vault = parse_answer(
        "response=2&responsetext=Insufficient funds&authcode=&transactionid=10000000042&avsresponse=N"
        "&cvvresponse=M&orderid=inv_9&type=sale&response_code=202&customer_vault_id=cus01"
    )
    assert response == GatewayResponse(
        outcome="declined",
        response_code=202,
        response_text="Insufficient funds",
        transaction_id="10000000042",
        authorization_code=None,
        order_id="inv_9",
    )
    assert vault == "cus01" and classify(response) == "retryable"


async def test_a_garbled_sale_answer_is_settled_by_lookup(gateway: NmiGateway, nmi: NmiServer) -> None:
    entry = await first_card(gateway, nmi)
    nmi.garble("<html>oops</html>", endpoint="transact", match={"type": "sale"})  # processed, answer unreadable
    response = await gateway.sale(
        vault_id=entry.vault_id, billing_id=entry.billing_id, amount=Money(990, "USD"), order_id="inv_86"
    )
    assert response.approved and len(nmi.charges) == 1


# ---- secrets ----------------------------------------------------------------------------------


async def test_no_secret_or_token_reaches_logs_urls_or_errors(
    connect: Callable[..., NmiGateway], nmi: NmiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = connect(timeout=0.8, max_attempts=2)
    tokens = [nmi.tokenize(VISA), nmi.tokenize(MASTERCARD), nmi.tokenize(AMEX), nmi.tokenize(VISA, "0120")]
    errors: list[BaseException] = []

    async def attempt(operation: Awaitable[object]) -> None:
        try:
            await operation
        except (GatewayDeclinedError, GatewayUnavailableError) as exc:
            errors.append(exc)

    first = await gateway.vault_add(payment_token=tokens[0], vault_id=None, billing_id="pm_1", customer=JANE)
    nmi.drop(endpoint="transact", match={"customer_vault": "add_billing"})
    await gateway.vault_add(payment_token=tokens[1], vault_id=first.vault_id, billing_id="pm_2", customer=JANE)
    await gateway.vault_update(payment_token=tokens[2], vault_id=first.vault_id, billing_id="pm_2")
    await attempt(gateway.vault_add(payment_token=tokens[3], vault_id=first.vault_id, billing_id="pm_3", customer=JANE))
    nmi.drop(endpoint="transact", match={"type": "sale"})
    await gateway.sale(vault_id=first.vault_id, billing_id="pm_1", amount=Money(990, "USD"), order_id="inv_90")
    nmi.hang(5.0, endpoint="transact", times=None)
    await attempt(gateway.sale(vault_id=first.vault_id, billing_id="pm_2", amount=Money(10, "USD"), order_id="inv_91"))
    nmi.faults.clear()
    await attempt(
        connect(security_key="another-secret-key").vault_delete(
            vault_id=first.vault_id, billing_id="pm_1", last_in_vault=False
        )
    )
    await gateway.vault_delete(vault_id=first.vault_id, billing_id="pm_1", last_in_vault=True)
    assert len(errors) == 3

    secrets = [nmi.security_key, "another-secret-key", *tokens]
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert "POST " + nmi.url + "/api/transact.php" in logged  # httpx's request log was on
    assert "no answer" in logged  # and the adapter's own
    said = logged + "".join(f"{error!r}{error}" for error in errors)
    assert not [secret for secret in secrets if secret in said]
    for request in nmi.requests:
        assert request.method == "POST" and request.query == ""  # nothing travels in a URL
        assert not {"ccnumber", "ccexp", "cvv", "checkaccount"} & set(request.fields)
        assert request.fields["security_key"] in {nmi.security_key, "another-secret-key"}
    carrying = [r.fields["customer_vault"] for r in nmi.requests if r.fields.get("payment_token")]
    assert carrying == ["add_customer", "add_billing", "update_billing", "add_billing"]  # each token sent once
