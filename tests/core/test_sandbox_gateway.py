"""The sandbox gateway: tokenizing over HTTP, the vault and sales per test card, isolation, frames."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.payments.choice import validate_gateway
from portal.payments.gateway import (
    GatewayDeclinedError,
    GatewayResponse,
    HostedFields,
    Money,
    SaleRequest,
    VaultCustomer,
    classify,
)
from portal.payments.sandbox import SANDBOX_GATEWAY, SandboxAdapter, SandboxSettings
from portal.payments.sandbox.cards import TEST_CARDS, Behaviour, InvalidFieldsError, brand_of, check_card, luhn_valid
from portal.platform import Platform
from portal.plugins.registry import SettingsError
from portal.testing import BASE_DOMAIN, ClientFactory, apply_tenants

RUN = uuid.uuid4().hex[:6]
ALPHA, BETA, GAMMA, ECHO, NONE, LIMITED = (
    f"sbx-{name}-{RUN}" for name in ("alpha", "beta", "gamma", "echo", "none", "limited")
)
BETA_KEY = f"beta_public_key_{RUN}"
CUSTOMER = VaultCustomer(customer_id="cus_sandbox_test", email="jane@example.test", name="Jane Example")
FUTURE = f"12 / {(datetime.now(UTC).year + 3) % 100:02d}"
VISA = "4111111111111111"
NOT_A_TEST_CARD = "Use a test card number: this is a test gateway"
PAYMENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "payments.md"

TENANTS = f"""
[[isos]]
slug = "sbx-iso-a-{RUN}"
name = "Sandbox ISO A"

[[isos.merchants]]
slug = "{ALPHA}"
name = "Alpha"
[isos.merchants.gateway]
key = "sandbox"

[[isos.merchants]]
slug = "{BETA}"
name = "Beta"
frame_ancestors = ["https://shop.beta.test"]
[isos.merchants.gateway]
key = "sandbox"
settings = {{ tokenization_key = "{BETA_KEY}" }}

[[isos.merchants]]
slug = "{LIMITED}"
name = "Limited"
[isos.merchants.gateway]
key = "sandbox"
settings = {{ tokenize_limit_per_hour = 2 }}

[[isos.merchants]]
slug = "{ECHO}"
name = "Echo"
[isos.merchants.gateway]
key = "echo"

[[isos.merchants]]
slug = "{NONE}"
name = "No gateway"

[[isos]]
slug = "sbx-iso-b-{RUN}"
name = "Sandbox ISO B"

[[isos.merchants]]
slug = "{GAMMA}"
name = "Gamma"
[isos.merchants.gateway]
key = "sandbox"
"""


def host(slug: str) -> str:
    return f"{slug}.{BASE_DOMAIN}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sandbox(portal_platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The platform with this module's merchants: three on the sandbox (two ISOs), one on echo, one on none."""
    assert portal_platform.registry.payment_gateways["sandbox"] is SANDBOX_GATEWAY
    await apply_tenants(portal_platform, TENANTS, tmp_path_factory.mktemp("sandbox-tenants"))
    return portal_platform


async def adapter(platform: Platform, slug: str, clock: Any = None) -> SandboxAdapter:
    """The merchant's adapter as the platform builds it, or a fresh one reading ``clock``."""
    tenant = await platform.tenants.resolve(host(slug))
    assert tenant is not None
    built = platform.gateways.for_tenant(tenant)
    assert isinstance(built, SandboxAdapter)
    if clock is None:
        return built
    return SandboxAdapter(built.settings, tenant.merchant, clock=clock)


async def key_of(platform: Platform, slug: str) -> str:
    return (await adapter(platform, slug)).tokenization_key


async def tokenize(
    client: httpx.AsyncClient, key: str, number: str, exp: str = FUTURE, cvv: str | None = "123"
) -> httpx.Response:
    body: dict[str, Any] = {"tokenization_key": key, "ccnumber": number, "ccexp": exp, "cvv": cvv}
    return await client.post("/sandbox-gateway/tokenize", json=body, headers={"accept": "application/json"})


async def token_for(platform: Platform, portal_client: ClientFactory, slug: str, number: str, **kwargs: Any) -> str:
    response = await tokenize(portal_client(host(slug)), await key_of(platform, slug), number, **kwargs)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


@pytest_asyncio.fixture(loop_scope="session")
async def owner(sandbox: Platform) -> AsyncIterator[asyncpg.Connection]:
    """An owner connection, which row-level security does not limit (to look at raw rows)."""
    connection = await asyncpg.connect(sandbox.settings.database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def _merchant_id(slug: str) -> tuple[str, str]:
    async with system_transaction():
        rows = await fetch("SELECT * FROM portal_locate_merchant($1)", slug)
    return str(rows[0]["iso_id"]), str(rows[0]["merchant_id"])


# --- cards ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111111111111111", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("371449635398431", "amex"),
        ("6011111111111117", "discover"),
        ("6445644564456445", "discover"),
        ("6500000000000002", "discover"),
        ("3566002020360505", "card"),
    ],
)
def test_brand_from_the_bin(number: str, brand: str) -> None:
    assert luhn_valid(number)
    assert brand_of(number) == brand


APPROVING = {
    "4111111111111111": "visa",
    "4242424242424242": "visa",
    "4012888888881881": "visa",
    "5555555555554444": "mastercard",
    "5105105105105100": "mastercard",
    "2223003122003222": "mastercard",
    "378282246310005": "amex",
    "371449635398431": "amex",
    "6011111111111117": "discover",
    "6011000990139424": "discover",
    "3566002020360505": "card",
}


def test_the_test_cards_are_the_six_special_ones_and_public_approving_numbers() -> None:
    assert {number: behaviour for number, behaviour in TEST_CARDS.items() if behaviour != Behaviour.APPROVE} == {
        "4000000000000002": Behaviour.INSUFFICIENT_FUNDS,
        "4000000000000069": Behaviour.EXPIRED_CARD,
        "4000000000000119": Behaviour.PROCESSOR_ERROR,
        "4000000000000341": Behaviour.DECLINE_AFTER_ATTACH,
        "4000000000000259": Behaviour.STOP_RECURRING_AFTER_ATTACH,
    }
    assert {number for number, behaviour in TEST_CARDS.items() if behaviour == Behaviour.APPROVE} == set(APPROVING)
    assert all(luhn_valid(number) for number in TEST_CARDS)
    today = datetime.now(UTC).date()
    for number, brand in APPROVING.items():
        cvv = "1234" if brand == "amex" else "123"
        assert check_card(number, FUTURE, cvv, today=today, cvv_required=True).brand == brand


def test_the_docs_list_exactly_the_test_cards() -> None:
    text = PAYMENTS_DOC.read_text(encoding="utf-8")
    section = text[text.index("### Test cards") :]
    section = section[: section.index("\n### ", 1)]
    listed = {re.sub(r"\s", "", found) for found in re.findall(r"`([\d ]{15,23})`", section)}
    assert listed == set(TEST_CARDS)


@pytest.mark.parametrize(
    ("number", "cvv", "errors"),
    [
        ("4929 1234 5678 9015", "123", {"ccnumber": NOT_A_TEST_CARD}),
        ("340000000000009", "1234", {"ccnumber": NOT_A_TEST_CARD}),  # its brand still sets the code's length
        ("340000000000009", "123", {"ccnumber": NOT_A_TEST_CARD, "cvv": "CVV is invalid"}),
        ("4111 1111 1111 1112", "123", {"ccnumber": "Card number is invalid"}),  # Luhn keeps its own message
    ],
)
def test_only_test_card_numbers_pass(number: str, cvv: str, errors: dict[str, str]) -> None:
    assert luhn_valid(number.replace(" ", "")) == (errors["ccnumber"] == NOT_A_TEST_CARD)
    with pytest.raises(InvalidFieldsError) as refused:
        check_card(number, FUTURE, cvv, today=datetime.now(UTC).date(), cvv_required=True)
    assert refused.value.errors == errors


def test_check_card_keeps_no_number() -> None:
    today = datetime.now(UTC).date()
    details = check_card("4111 1111 1111 1111", FUTURE, "123", today=today, cvv_required=True)
    assert (details.brand, details.last4, details.bin, details.masked) == ("visa", "1111", "411111", "411111******1111")
    assert "4111111111111111" not in repr(details)


# --- tokenizing over HTTP ---------------------------------------------------------------------


async def test_tokenize_answers_like_collect_js(sandbox: Platform, portal_client: ClientFactory, owner) -> None:
    response = await tokenize(portal_client(host(ALPHA)), await key_of(sandbox, ALPHA), "4111 1111 1111 1111")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["tokenType"] == "inline"
    assert re.fullmatch(r"sbx_tok_[A-Za-z0-9_-]{32}", body["token"])
    year = (datetime.now(UTC).year + 3) % 100
    assert body["card"] == {
        "number": "411111******1111",
        "bin": "411111",
        "exp": f"12{year:02d}",
        "type": "visa",
        "hash": "",
    }
    assert "4111111111111111" not in repr(await owner.fetch("SELECT * FROM portal_sandbox_token"))
    row = await owner.fetchrow(
        "SELECT * FROM portal_sandbox_token WHERE token_hash = sha256($1::bytea)", body["token"].encode()
    )
    assert row is not None  # only the token's hash is kept
    assert {key: value for key, value in dict(row).items() if key not in ("token_hash", "iso_id", "merchant_id")} == {
        "brand": "visa",
        "last4": "1111",
        "exp_month": 12,
        "exp_year": 2000 + year,
        "behaviour": "approve",
        "created_at": row["created_at"],
        "expires_at": row["created_at"] + timedelta(hours=24),
        "used_at": None,
    }


async def test_tokens_live_24_hours(sandbox: Platform, portal_client: ClientFactory, owner) -> None:
    token = await token_for(sandbox, portal_client, ALPHA, "4111111111111111")
    row = await owner.fetchrow(
        "SELECT created_at, expires_at FROM portal_sandbox_token WHERE token_hash = sha256($1::bytea)", token.encode()
    )
    assert row["expires_at"] - row["created_at"] == timedelta(hours=24)


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"ccnumber": "4111111111111112"}, {"ccnumber": "Card number is invalid"}),
        ({"ccnumber": "4111"}, {"ccnumber": "Card number is invalid"}),
        ({"ccnumber": "4929123456789015"}, {"ccnumber": NOT_A_TEST_CARD}),
        (
            {"ccnumber": "4999 9999 9999 9996", "ccexp": "01/20"},
            {"ccnumber": NOT_A_TEST_CARD, "ccexp": "Card is expired"},
        ),
        ({"ccnumber": ""}, {"ccnumber": "Card number is required"}),
        ({"ccexp": "01/20"}, {"ccexp": "Card is expired"}),
        ({"ccexp": "13/30"}, {"ccexp": "Expiration date is invalid"}),
        ({"ccexp": ""}, {"ccexp": "Expiration date is required"}),
        ({"cvv": "12"}, {"cvv": "CVV is invalid"}),
        ({"ccnumber": "378282246310005", "cvv": "123"}, {"cvv": "CVV is invalid"}),
        (
            {"ccnumber": "1234567812345678", "ccexp": "02/2001", "cvv": "x"},
            {"ccnumber": "Card number is invalid", "ccexp": "Card is expired", "cvv": "CVV is invalid"},
        ),
    ],
)
async def test_invalid_fields_get_field_messages_and_no_token(
    sandbox: Platform, portal_client: ClientFactory, fields: dict[str, str], errors: dict[str, str]
) -> None:
    body = {"ccnumber": "4111111111111111", "ccexp": FUTURE, "cvv": "123", **fields}
    key = await key_of(sandbox, ALPHA)
    response = await tokenize(portal_client(host(ALPHA)), key, body["ccnumber"], exp=body["ccexp"], cvv=body["cvv"])
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"] == errors
    assert "token" not in response.json()


async def test_security_code_is_optional_unless_required(sandbox: Platform, portal_client: ClientFactory) -> None:
    client, key = portal_client(host(ALPHA)), await key_of(sandbox, ALPHA)
    assert (await tokenize(client, key, "4111111111111111", cvv=None)).status_code == 200
    assert (await tokenize(client, key, "4111111111111111", cvv="")).status_code == 200
    required = await client.post(
        "/sandbox-gateway/tokenize",
        json={
            "tokenization_key": key,
            "ccnumber": "4111111111111111",
            "ccexp": FUTURE,
            "cvv": "",
            "cvv_required": True,
        },
    )
    assert required.status_code == 422
    assert required.json()["errors"] == {"cvv": "CVV is required"}


async def test_wrong_tokenization_key_is_401(sandbox: Platform, portal_client: ClientFactory) -> None:
    client = portal_client(host(ALPHA))
    wrong = await tokenize(client, "sbx_pk_not_this_merchant", "4111111111111111")
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    other_merchants_key = await tokenize(client, BETA_KEY, "4111111111111111")
    assert other_merchants_key.status_code == 401
    in_header = await client.post(
        "/sandbox-gateway/tokenize",
        json={"ccnumber": "4111111111111111", "ccexp": FUTURE},
        headers={"x-tokenization-key": await key_of(sandbox, ALPHA)},
    )
    assert in_header.status_code == 200


async def test_configured_tokenization_key_replaces_the_default(
    sandbox: Platform, portal_client: ClientFactory
) -> None:
    client = portal_client(host(BETA))
    assert (await tokenize(client, BETA_KEY, "4111111111111111")).status_code == 200
    _, beta_id = await _merchant_id(BETA)
    assert (await tokenize(client, f"sbx_pk_{beta_id}", "4111111111111111")).status_code == 401


async def test_the_tokenization_limit_is_a_setting(
    sandbox: Platform, portal_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await adapter(sandbox, LIMITED)).settings == SandboxSettings(tokenize_limit_per_hour=2)
    assert SandboxSettings().tokenize_limit_per_hour == 300
    # The three requests are counted in the hourly window holding this fixed time, whatever the clock says.
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    monkeypatch.setattr("portal.payments.sandbox.routes.utc_now", lambda: now)
    client, key = portal_client(host(LIMITED)), await key_of(sandbox, LIMITED)
    assert (await tokenize(client, key, "4111111111111111")).status_code == 200
    assert (await tokenize(client, key, "4111111111111112")).status_code == 422  # refused requests count too
    third = await tokenize(client, key, "4111111111111111")
    assert third.status_code == 429
    assert third.headers["retry-after"] == "3600"
    assert third.headers["content-type"].startswith("application/problem+json")
    assert "token" not in third.json()
    assert (await tokenize(portal_client(host(ALPHA)), await key_of(sandbox, ALPHA), VISA)).status_code == 200


async def test_tokenize_needs_no_csrf_token_but_a_json_body(sandbox: Platform, portal_client: ClientFactory) -> None:
    client = portal_client(host(ALPHA))
    response = await client.post(
        "/sandbox-gateway/tokenize", content=b"not json", headers={"accept": "application/json"}
    )
    assert response.status_code == 400


@pytest.mark.parametrize("slug", [ECHO, NONE], ids=["echo-gateway", "no-gateway"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/sandbox-gateway/tokenize"),
        ("GET", "/sandbox-gateway/collect.js"),
        ("GET", "/sandbox-gateway/field.js"),
        ("GET", "/sandbox-gateway/fields/ccnumber?key=x"),
    ],
)
async def test_merchants_on_another_gateway_have_no_sandbox(
    sandbox: Platform, portal_client: ClientFactory, slug: str, method: str, path: str
) -> None:
    response = await portal_client(host(slug)).request(
        method, path, json={"tokenization_key": "x", "ccnumber": "4111111111111111", "ccexp": FUTURE}
    )
    assert response.status_code == 404


# --- the adapter, card by card ----------------------------------------------------------------


async def test_hosted_fields_point_at_the_sandbox_script(sandbox: Platform) -> None:
    gateway = await adapter(sandbox, ALPHA)
    _, alpha_id = await _merchant_id(ALPHA)
    assert gateway.hosted_fields("#2e7d32") == HostedFields(
        script_url="/sandbox-gateway/collect.js",
        origins=(),
        script_attributes={"data-tokenization-key": f"sbx_pk_{alpha_id}", "data-variant": "inline"},
        test_mode=True,
    )
    assert (await adapter(sandbox, BETA)).hosted_fields("#000000").script_attributes[
        "data-tokenization-key"
    ] == BETA_KEY


@pytest.mark.parametrize(("number", "brand"), APPROVING.items())
async def test_approving_cards_go_on_file_and_charge(
    sandbox: Platform, portal_client: ClientFactory, number: str, brand: str
) -> None:
    gateway = await adapter(sandbox, ALPHA)
    token = await token_for(sandbox, portal_client, ALPHA, number, cvv="1234" if brand == "amex" else "123")
    entry = await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_1", customer=CUSTOMER)
    assert entry.vault_id.startswith("sbx_cv_") and entry.billing_id == "pm_1" and entry.new_vault
    assert (entry.card.brand, entry.card.last4, entry.card.exp_month) == (brand, number[-4:], 12)
    assert entry.card.exp_year == datetime.now(UTC).year + 3
    result = await gateway.sale(
        vault_id=entry.vault_id, billing_id="pm_1", amount=Money(1999, "USD"), order_id=f"order-{uuid.uuid4().hex}"
    )
    assert (result.outcome, result.response_code, result.response_text) == ("approved", 100, "SUCCESS")
    assert result.transaction_id and result.transaction_id.startswith("sbx_txn_")
    assert result.authorization_code and re.fullmatch(r"\d{6}", result.authorization_code)
    assert classify(result) == "approved"


@pytest.mark.parametrize(
    ("number", "outcome", "code", "text", "kind"),
    [
        ("4000000000000002", "declined", 202, "Insufficient funds", "retryable"),
        ("4000000000000069", "declined", 223, "Expired card", "final"),
        ("4000000000000119", "error", 400, "Transaction error returned by processor", "retryable"),
    ],
)
async def test_refused_cards_never_get_on_file(
    sandbox: Platform, portal_client: ClientFactory, owner, number: str, outcome: str, code: int, text: str, kind: str
) -> None:
    gateway = await adapter(sandbox, ALPHA)
    billing_id = f"pm_refused_{uuid.uuid4().hex[:8]}"
    token = await token_for(sandbox, portal_client, ALPHA, number)
    with pytest.raises(GatewayDeclinedError) as refused:
        await gateway.vault_add(payment_token=token, vault_id=None, billing_id=billing_id, customer=CUSTOMER)
    response = refused.value.response
    assert (response.outcome, response.response_code, response.response_text) == (outcome, code, text)
    assert classify(response) == kind
    assert await owner.fetchval("SELECT count(*) FROM portal_sandbox_billing WHERE billing_id = $1", billing_id) == 0
    with pytest.raises(GatewayDeclinedError) as again:  # the refused request used the token up
        await gateway.vault_add(payment_token=token, vault_id=None, billing_id=billing_id, customer=CUSTOMER)
    assert (again.value.response.response_code, again.value.response.response_text) == (300, "Invalid payment token")


async def test_a_card_that_attaches_then_declines(sandbox: Platform, portal_client: ClientFactory) -> None:
    gateway = await adapter(sandbox, ALPHA)
    token = await token_for(sandbox, portal_client, ALPHA, "4000 0000 0000 0341")
    entry = await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_0341", customer=CUSTOMER)
    assert entry.card.last4 == "0341"
    for _ in range(2):
        result = await gateway.sale(
            vault_id=entry.vault_id, billing_id="pm_0341", amount=Money(500, "EUR"), order_id=f"o-{uuid.uuid4().hex}"
        )
        assert (result.outcome, result.response_code, result.response_text) == ("declined", 201, "Do not honor")
        assert result.transaction_id and result.transaction_id.startswith("sbx_txn_")
        assert result.authorization_code is None
        assert classify(result) == "retryable"


async def test_only_an_approval_settles_an_order(sandbox: Platform, portal_client: ClientFactory, owner) -> None:
    gateway = await adapter(sandbox, ALPHA)
    token = await token_for(sandbox, portal_client, ALPHA, "4000000000000341")
    entry = await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_retry", customer=CUSTOMER)
    order = f"inv-{uuid.uuid4().hex}"
    amount = Money(2500, "USD")
    first = await gateway.sale(vault_id=entry.vault_id, billing_id="pm_retry", amount=amount, order_id=order)
    second = await gateway.sale(vault_id=entry.vault_id, billing_id="pm_retry", amount=amount, order_id=order)
    assert first.response_code == second.response_code == 201
    assert first.transaction_id != second.transaction_id  # a decline does not settle the order: each is an attempt
    await gateway.vault_update(
        payment_token=await token_for(sandbox, portal_client, ALPHA, "4111111111111111"),
        vault_id=entry.vault_id,
        billing_id="pm_retry",
    )
    paid = await gateway.sale(vault_id=entry.vault_id, billing_id="pm_retry", amount=amount, order_id=order)
    again = await gateway.sale(vault_id=entry.vault_id, billing_id="pm_retry", amount=amount, order_id=order)
    assert paid.approved and again == paid
    rows = await owner.fetch(
        "SELECT outcome FROM portal_sandbox_transaction WHERE order_id = $1 ORDER BY created_at, id", order
    )
    assert [row["outcome"] for row in rows] == ["declined", "declined", "approved"]


async def test_concurrent_sales_of_one_order_charge_once(
    sandbox: Platform, portal_client: ClientFactory, owner
) -> None:
    gateway = await adapter(sandbox, ALPHA)
    token = await token_for(sandbox, portal_client, ALPHA, "4111111111111111")
    entry = await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_race", customer=CUSTOMER)
    order = f"race-{uuid.uuid4().hex}"
    results = await asyncio.gather(
        *(
            gateway.sale(vault_id=entry.vault_id, billing_id="pm_race", amount=Money(700, "USD"), order_id=order)
            for _ in range(5)
        )
    )
    assert all(result == results[0] for result in results) and results[0].approved
    assert await owner.fetchval("SELECT count(*) FROM portal_sandbox_transaction WHERE order_id = $1", order) == 1


async def test_many_sales_at_once_answer_each_as_one_sale_would(
    sandbox: Platform, portal_client: ClientFactory, owner
) -> None:
    gateway = await adapter(sandbox, ALPHA)
    approving = await gateway.vault_add(
        payment_token=await token_for(sandbox, portal_client, ALPHA, "4111111111111111"), vault_id=None,
        billing_id="pm_many", customer=CUSTOMER,
    )  # fmt: skip
    declining = await gateway.vault_add(
        payment_token=await token_for(sandbox, portal_client, ALPHA, "4000000000000341"), vault_id=None,
        billing_id="pm_many_declines", customer=CUSTOMER,
    )  # fmt: skip
    tag = uuid.uuid4().hex
    settled = f"settled-{tag}"
    first = await gateway.sale(
        vault_id=approving.vault_id, billing_id="pm_many", amount=Money(100, "USD"), order_id=settled
    )

    def request(vault: str, billing: str, order: str, amount: int = 100, currency: str = "USD") -> SaleRequest:
        return SaleRequest(vault_id=vault, billing_id=billing, amount=Money(amount, currency), order_id=order)

    answers = await gateway.sales(
        [
            request(approving.vault_id, "pm_many", f"new-{tag}"),
            request(approving.vault_id, "pm_many", f"twice-{tag}"),
            request(approving.vault_id, "pm_many", f"twice-{tag}"),  # the same order twice: one charge
            request(declining.vault_id, "pm_many_declines", f"declined-{tag}"),
            request(approving.vault_id, "pm_many", settled),  # approved before: that sale again
            request(approving.vault_id, "pm_gone", f"missing-{tag}"),
            request("sbx_cv_nobody", "pm_many", f"nobody-{tag}"),
            request(approving.vault_id, "pm_many", f"free-{tag}", amount=0),
            request(approving.vault_id, "pm_many", f"odd-{tag}", currency="usd"),
        ]
    )
    assert all(isinstance(answer, GatewayResponse) for answer in answers)
    new, twice, again, declined, earlier, missing, nobody, free, odd = answers
    assert new.approved and twice.approved and again == twice  # type: ignore[union-attr]
    assert (declined.outcome, declined.response_code) == ("declined", 201)  # type: ignore[union-attr]
    assert earlier == first
    assert [(a.outcome, a.response_text) for a in (missing, nobody, free, odd)] == [  # type: ignore[union-attr]
        ("error", "Invalid Billing Id"), ("error", "Invalid Customer Vault Id"), ("error", "Invalid amount"),
        ("error", "Invalid currency"),
    ]  # fmt: skip
    rows = await owner.fetch(
        "SELECT order_id, outcome FROM portal_sandbox_transaction WHERE order_id LIKE '%' || $1 ORDER BY order_id", tag
    )
    assert sorted((row["order_id"].split("-")[0], row["outcome"]) for row in rows) == [
        ("declined", "declined"), ("new", "approved"), ("settled", "approved"), ("twice", "approved"),
    ]  # fmt: skip


# --- tokens: single use, 24 hours, per merchant -------------------------------------------------


async def test_a_token_is_single_use(sandbox: Platform, portal_client: ClientFactory) -> None:
    gateway = await adapter(sandbox, ALPHA)
    token = await token_for(sandbox, portal_client, ALPHA, "4111111111111111")
    await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_once", customer=CUSTOMER)
    with pytest.raises(GatewayDeclinedError) as second:
        await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_twice", customer=CUSTOMER)
    assert second.value.response.outcome == "error"
    assert (second.value.response.response_code, second.value.response.response_text) == (300, "Invalid payment token")
    with pytest.raises(GatewayDeclinedError):
        await gateway.vault_add(payment_token="sbx_tok_unknown", vault_id=None, billing_id="pm_x", customer=CUSTOMER)


async def test_a_token_expires_after_24_hours(sandbox: Platform, portal_client: ClientFactory) -> None:
    late = await adapter(sandbox, ALPHA, clock=lambda: datetime.now(UTC) + timedelta(hours=24, seconds=1))
    token = await token_for(sandbox, portal_client, ALPHA, "4111111111111111")
    with pytest.raises(GatewayDeclinedError) as expired:
        await late.vault_add(payment_token=token, vault_id=None, billing_id="pm_late", customer=CUSTOMER)
    assert expired.value.response.response_text == "Invalid payment token"
    in_time = await adapter(sandbox, ALPHA, clock=lambda: datetime.now(UTC) + timedelta(hours=23, minutes=59))
    entry = await in_time.vault_add(payment_token=token, vault_id=None, billing_id="pm_in_time", customer=CUSTOMER)
    assert entry.card.last4 == "1111"


async def test_another_merchants_token_and_vault_are_unknown(sandbox: Platform, portal_client: ClientFactory) -> None:
    alpha, beta, gamma = [await adapter(sandbox, slug) for slug in (ALPHA, BETA, GAMMA)]
    alpha_token = await token_for(sandbox, portal_client, ALPHA, "4111111111111111")
    for other in (beta, gamma):  # same ISO, and another ISO
        with pytest.raises(GatewayDeclinedError) as refused:
            await other.vault_add(payment_token=alpha_token, vault_id=None, billing_id="pm_b", customer=CUSTOMER)
        assert refused.value.response.response_text == "Invalid payment token"
    entry = await alpha.vault_add(payment_token=alpha_token, vault_id=None, billing_id="pm_a", customer=CUSTOMER)
    beta_token = await token_for(sandbox, portal_client, BETA, "4111111111111111")
    with pytest.raises(GatewayDeclinedError) as foreign_vault:
        await beta.vault_add(payment_token=beta_token, vault_id=entry.vault_id, billing_id="pm_b", customer=CUSTOMER)
    assert foreign_vault.value.response.response_text == "Invalid Customer Vault Id"
    for other in (beta, gamma):
        sale = await other.sale(
            vault_id=entry.vault_id, billing_id="pm_a", amount=Money(100, "USD"), order_id=f"o-{uuid.uuid4().hex}"
        )
        assert (sale.outcome, sale.response_code, sale.response_text) == ("error", 300, "Invalid Customer Vault Id")
        for last_in_vault in (False, True):  # unknown to them, so "already gone": no error, and nothing deleted
            await other.vault_delete(vault_id=entry.vault_id, billing_id="pm_a", last_in_vault=last_in_vault)
    sale = await alpha.sale(
        vault_id=entry.vault_id, billing_id="pm_a", amount=Money(100, "USD"), order_id=f"o-{uuid.uuid4().hex}"
    )
    assert sale.approved  # untouched by the others' attempts


async def test_another_iso_cannot_see_or_write_sandbox_rows(sandbox: Platform, portal_client: ClientFactory) -> None:
    await token_for(sandbox, portal_client, ALPHA, "4111111111111111")
    gateway = await adapter(sandbox, ALPHA)
    token = await token_for(sandbox, portal_client, ALPHA, "4111111111111111")
    entry = await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_rls", customer=CUSTOMER)
    await gateway.sale(vault_id=entry.vault_id, billing_id="pm_rls", amount=Money(1, "USD"), order_id=f"o-{RUN}-rls")
    iso_a, alpha_id = await _merchant_id(ALPHA)
    iso_b, _ = await _merchant_id(GAMMA)
    tables = ("portal_sandbox_token", "portal_sandbox_vault", "portal_sandbox_billing", "portal_sandbox_transaction")
    for table in tables:
        async with tenant_transaction(iso_a):
            assert (await fetch(f"SELECT count(*) AS n FROM {table} WHERE merchant_id = $1", alpha_id))[0]["n"] > 0
        async with tenant_transaction(iso_b):
            assert await fetch(f"SELECT count(*) AS n FROM {table} WHERE merchant_id = $1", alpha_id) == [{"n": 0}]
        assert await fetch(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]  # no ISO set: nothing
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(iso_b):
            await fetch(
                "INSERT INTO portal_sandbox_vault (iso_id, merchant_id, vault_id, customer_id, email, name) "
                "VALUES ($1, $2, 'sbx_cv_forged', 'c', 'e@x.test', 'n')",
                iso_a,
                alpha_id,
            )
    async with tenant_transaction(iso_b):
        assert await fetch("DELETE FROM portal_sandbox_billing WHERE merchant_id = $1 RETURNING 1", alpha_id) == []
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # sales are append-only for the application
        async with tenant_transaction(iso_a):
            await fetch("UPDATE portal_sandbox_transaction SET amount_minor = 2 WHERE merchant_id = $1", alpha_id)


# --- the vault --------------------------------------------------------------------------------


async def test_vault_add_update_and_delete(sandbox: Platform, portal_client: ClientFactory, owner) -> None:
    gateway = await adapter(sandbox, ALPHA)
    first = await gateway.vault_add(
        payment_token=await token_for(sandbox, portal_client, ALPHA, "4111111111111111"),
        vault_id=None,
        billing_id="pm_first",
        customer=CUSTOMER,
    )
    second = await gateway.vault_add(
        payment_token=await token_for(sandbox, portal_client, ALPHA, "5555555555554444"),
        vault_id=first.vault_id,
        billing_id="pm_second",
        customer=CUSTOMER,
    )
    assert second.vault_id == first.vault_id and second.card.brand == "mastercard"
    assert first.new_vault and not second.new_vault
    with pytest.raises(GatewayDeclinedError) as duplicate:
        await gateway.vault_add(
            payment_token=await token_for(sandbox, portal_client, ALPHA, "4111111111111111"),
            vault_id=first.vault_id,
            billing_id="pm_second",
            customer=CUSTOMER,
        )
    assert duplicate.value.response.response_text == "Duplicate Billing Id"

    updated = await gateway.vault_update(
        payment_token=await token_for(sandbox, portal_client, ALPHA, "4000000000000341", exp="07/2031"),
        vault_id=first.vault_id,
        billing_id="pm_first",
    )
    assert (updated.card.last4, updated.card.exp_month, updated.card.exp_year) == ("0341", 7, 2031)
    sale = await gateway.sale(
        vault_id=first.vault_id, billing_id="pm_first", amount=Money(100, "USD"), order_id=f"o-{uuid.uuid4().hex}"
    )
    assert sale.response_code == 201  # the new card's behaviour
    with pytest.raises(GatewayDeclinedError) as refused_update:
        await gateway.vault_update(
            payment_token=await token_for(sandbox, portal_client, ALPHA, "4000000000000069"),
            vault_id=first.vault_id,
            billing_id="pm_second",
        )
    assert refused_update.value.response.response_code == 223
    kept = await owner.fetchrow(
        "SELECT last4 FROM portal_sandbox_billing WHERE vault_id = $1 AND billing_id = 'pm_second'", first.vault_id
    )
    assert kept["last4"] == "4444"
    with pytest.raises(GatewayDeclinedError) as unknown_billing:
        await gateway.vault_update(
            payment_token=await token_for(sandbox, portal_client, ALPHA, "4111111111111111"),
            vault_id=first.vault_id,
            billing_id="pm_nope",
        )
    assert unknown_billing.value.response.response_text == "Invalid Billing Id"

    await gateway.vault_delete(vault_id=first.vault_id, billing_id="pm_second", last_in_vault=False)
    assert await owner.fetchval("SELECT count(*) FROM portal_sandbox_vault WHERE vault_id = $1", first.vault_id) == 1
    await gateway.vault_delete(vault_id=first.vault_id, billing_id="pm_second", last_in_vault=False)  # already gone
    await gateway.vault_delete(vault_id=first.vault_id, billing_id="pm_first", last_in_vault=True)
    assert await owner.fetchval("SELECT count(*) FROM portal_sandbox_vault WHERE vault_id = $1", first.vault_id) == 0
    with pytest.raises(GatewayDeclinedError) as no_vault:
        await gateway.vault_add(
            payment_token=await token_for(sandbox, portal_client, ALPHA, "4111111111111111"),
            vault_id=first.vault_id,
            billing_id="pm_third",
            customer=CUSTOMER,
        )
    assert no_vault.value.response.response_text == "Invalid Customer Vault Id"


async def test_deleting_what_is_already_gone_succeeds(sandbox: Platform, portal_client: ClientFactory, owner) -> None:
    gateway = await adapter(sandbox, ALPHA)
    entry = await gateway.vault_add(
        payment_token=await token_for(sandbox, portal_client, ALPHA, "4111111111111111"),
        vault_id=None,
        billing_id="pm_kept",
        customer=CUSTOMER,
    )

    async def rows(table: str) -> int:
        return int(await owner.fetchval(f"SELECT count(*) FROM {table} WHERE vault_id = $1", entry.vault_id))

    await gateway.vault_delete(vault_id=entry.vault_id, billing_id="pm_never_there", last_in_vault=False)
    assert (await rows("portal_sandbox_vault"), await rows("portal_sandbox_billing")) == (1, 1)
    # the last card's billing id is already gone (an earlier, interrupted removal): the record still goes
    await gateway.vault_delete(vault_id=entry.vault_id, billing_id="pm_never_there", last_in_vault=True)
    assert (await rows("portal_sandbox_vault"), await rows("portal_sandbox_billing")) == (0, 0)
    for last_in_vault in (False, True):
        await gateway.vault_delete(vault_id=entry.vault_id, billing_id="pm_kept", last_in_vault=last_in_vault)
        await gateway.vault_delete(vault_id="sbx_cv_unknown", billing_id="pm_kept", last_in_vault=last_in_vault)


async def test_the_adapter_joins_the_callers_transaction(
    sandbox: Platform, portal_client: ClientFactory, owner
) -> None:
    gateway = await adapter(sandbox, ALPHA)
    iso_a, _ = await _merchant_id(ALPHA)
    token = await token_for(sandbox, portal_client, ALPHA, "4111111111111111")

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with tenant_transaction(iso_a):
            entry = await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_join", customer=CUSTOMER)
            raise Abandon
    assert await owner.fetchval("SELECT count(*) FROM portal_sandbox_vault WHERE vault_id = $1", entry.vault_id) == 0
    again = await gateway.vault_add(payment_token=token, vault_id=None, billing_id="pm_join", customer=CUSTOMER)
    assert again.card.last4 == "1111"  # the rolled-back use did not use the token up


# --- sales ------------------------------------------------------------------------------------


async def test_a_repeated_order_id_charges_once(sandbox: Platform, portal_client: ClientFactory, owner) -> None:
    gateway = await adapter(sandbox, ALPHA)
    entry = await gateway.vault_add(
        payment_token=await token_for(sandbox, portal_client, ALPHA, "4111111111111111"),
        vault_id=None,
        billing_id="pm_idem",
        customer=CUSTOMER,
    )
    order = f"inv-{uuid.uuid4().hex}"
    first = await gateway.sale(vault_id=entry.vault_id, billing_id="pm_idem", amount=Money(4200, "GBP"), order_id=order)
    again = await gateway.sale(vault_id=entry.vault_id, billing_id="pm_idem", amount=Money(4200, "GBP"), order_id=order)
    assert first == again and first.order_id == order
    rows = await owner.fetch(
        "SELECT amount_minor, currency, outcome FROM portal_sandbox_transaction WHERE order_id = $1", order
    )
    assert [tuple(row) for row in rows] == [(4200, "GBP", "approved")]
    other = await gateway.sale(
        vault_id=entry.vault_id, billing_id="pm_idem", amount=Money(4200, "GBP"), order_id=order + "-2"
    )
    assert other.approved and other.transaction_id != first.transaction_id
    beta = await adapter(sandbox, BETA)  # order ids are per merchant
    beta_entry = await beta.vault_add(
        payment_token=await token_for(sandbox, portal_client, BETA, "4111111111111111"),
        vault_id=None,
        billing_id="pm_idem",
        customer=CUSTOMER,
    )
    beta_sale = await beta.sale(
        vault_id=beta_entry.vault_id, billing_id="pm_idem", amount=Money(1, "GBP"), order_id=order
    )
    assert beta_sale.approved and beta_sale.transaction_id != first.transaction_id


async def test_sales_that_cannot_run(sandbox: Platform, portal_client: ClientFactory, owner) -> None:
    gateway = await adapter(sandbox, ALPHA)
    entry = await gateway.vault_add(
        payment_token=await token_for(sandbox, portal_client, ALPHA, "4111111111111111"),
        vault_id=None,
        billing_id="pm_bad_sales",
        customer=CUSTOMER,
    )
    cases = [
        (Money(0, "USD"), "Invalid amount"),
        (Money(-5, "USD"), "Invalid amount"),
        (Money(100, "usd"), "Invalid currency"),
    ]
    for amount, text in cases:
        order = f"bad-{uuid.uuid4().hex}"
        result = await gateway.sale(vault_id=entry.vault_id, billing_id="pm_bad_sales", amount=amount, order_id=order)
        assert (result.outcome, result.response_code, result.response_text) == ("error", 300, text)
        assert classify(result) == "final"
    unknown = await gateway.sale(vault_id=entry.vault_id, billing_id="pm_nope", amount=Money(1, "USD"), order_id="x1")
    assert unknown.response_text == "Invalid Billing Id" and unknown.transaction_id is None
    assert (
        await owner.fetchval("SELECT count(*) FROM portal_sandbox_transaction WHERE billing_id = 'pm_bad_sales'") == 0
    )


# --- scripts and field frames -----------------------------------------------------------------


async def test_scripts_are_served(sandbox: Platform, portal_client: ClientFactory) -> None:
    client = portal_client(host(ALPHA))
    collect = await client.get("/sandbox-gateway/collect.js")
    assert collect.status_code == 200 and collect.headers["content-type"].startswith("text/javascript")
    for name in (
        "window.CollectJS",
        "configure",
        "startPaymentRequest",
        "fieldsAvailableCallback",
        "validationCallback",
    ):
        assert name in collect.text
    field = await client.get("/sandbox-gateway/field.js")
    assert field.status_code == 200 and field.headers["content-type"].startswith("text/javascript")
    assert "collectField" in field.text


async def test_the_field_frame_renders_a_labelled_input_with_its_nonce(
    sandbox: Platform, portal_client: ClientFactory
) -> None:
    client = portal_client(host(ALPHA))
    key = await key_of(sandbox, ALPHA)
    response = await client.get(
        "/sandbox-gateway/fields/ccnumber",
        params={"key": key, "instance": "abc123", "title": "Numéro de carte", "placeholder": "1234 1234 1234 1234"},
    )
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    assert "frame-ancestors 'self'" in csp and "script-src 'self' 'nonce-" in csp
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    html = response.text
    assert f'<script src="/sandbox-gateway/field.js" nonce="{nonce.group(1)}"' in html
    assert f'<style nonce="{nonce.group(1)}">' in html
    assert '<html lang="en">' in html and "<title>Numéro de carte</title>" in html
    assert '<label for="field" class="visually-hidden">Numéro de carte</label>' in html
    assert 'autocomplete="cc-number"' in html and 'inputmode="numeric"' in html
    assert 'placeholder="1234 1234 1234 1234"' in html and 'data-instance="abc123"' in html
    assert f'data-test-cards="{" ".join(TEST_CARDS)}"' in html  # what the number frame sends at all
    for field, autocomplete in (("ccexp", "cc-exp"), ("cvv", "cc-csc")):
        page = await client.get(f"/sandbox-gateway/fields/{field}", params={"key": key})
        assert page.status_code == 200 and f'autocomplete="{autocomplete}"' in page.text
        assert "data-test-cards" not in page.text


async def test_the_field_frame_may_be_framed_where_the_portal_may(
    sandbox: Platform, portal_client: ClientFactory
) -> None:
    response = await portal_client(host(BETA)).get("/sandbox-gateway/fields/cvv", params={"key": BETA_KEY})
    assert "frame-ancestors 'self' https://shop.beta.test" in response.headers["content-security-policy"]
    assert "x-frame-options" not in response.headers


async def test_the_field_frame_refuses_a_wrong_key_and_unknown_fields(
    sandbox: Platform, portal_client: ClientFactory
) -> None:
    client = portal_client(host(ALPHA))
    assert (await client.get("/sandbox-gateway/fields/ccnumber", params={"key": BETA_KEY})).status_code == 401
    assert (await client.get("/sandbox-gateway/fields/ccnumber")).status_code == 401
    key = await key_of(sandbox, ALPHA)
    assert (await client.get("/sandbox-gateway/fields/password", params={"key": key})).status_code == 404


async def test_merchant_styles_reach_the_frame_without_injection(
    sandbox: Platform, portal_client: ClientFactory
) -> None:
    css = (
        '{"custom": {"border-color": "#8792a2", "font-size": "16px", "color": "red;}</style><script>alert(1)</script>",'
        ' "background": "url(https://evil.test/x)", "font-family": "\'Poppins\', sans-serif", "}body{": "x"},'
        ' "focus": {"outline": "2px solid #2e7d32"}, "invalid": {"border-color": "#b42318"},'
        ' "placeholder": {"color": "#555"}, "unknown": {"color": "blue"}}'
    )
    response = await portal_client(host(ALPHA)).get(
        "/sandbox-gateway/fields/ccexp", params={"key": await key_of(sandbox, ALPHA), "css": css}
    )
    html = response.text
    assert "input { border-color: #8792a2; font-size: 16px; font-family: 'Poppins', sans-serif; }" in html
    assert "input:focus { outline: 2px solid #2e7d32; }" in html
    assert 'input[aria-invalid="true"] { border-color: #b42318; }' in html
    assert "input::placeholder { color: #555; }" in html
    assert "alert(1)" not in html and "evil.test" not in html and "blue" not in html and "}body{" not in html


def test_settings_are_checked(portal_platform: Platform) -> None:
    choice = validate_gateway(portal_platform.registry, "sandbox", None)
    assert choice.settings == SandboxSettings()
    assert validate_gateway(portal_platform.registry, "sandbox", {"tokenization_key": "key_12345678"}).settings == (
        SandboxSettings(tokenization_key="key_12345678")
    )
    for limit in (1, 100_000):
        settings = validate_gateway(portal_platform.registry, "sandbox", {"tokenize_limit_per_hour": limit}).settings
        assert settings == SandboxSettings(tokenize_limit_per_hour=limit)
    for bad in (
        {"api_key": "x"},
        {"tokenization_key": "short"},
        {"tokenization_key": "has spaces in it"},
        {"tokenize_limit_per_hour": 0},
        {"tokenize_limit_per_hour": 100_001},
        {"tokenize_limit_per_hour": "300"},
        {"tokenize_limit_per_hour": True},
    ):
        with pytest.raises(SettingsError):
            validate_gateway(portal_platform.registry, "sandbox", bad)


# --- in a browser: the Collect.js flow under the portal's CSP, and axe-core -----------------------


MERCHANT_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Checkout</title></head>
<body>
<main>
<h1>Checkout</h1>
<form id="checkout" method="post" action="/checkout">
  <p>Card number</p><div id="card-number"></div>
  <p>Expiry date</p><div id="card-expiry"></div>
  <p>Security code</p><div id="card-cvv"></div>
  <button type="button" id="payButton">Pay</button>
</form>
<p id="result"></p>
<ul id="validations"></ul>
</main>
<script src="/sandbox-gateway/collect.js" data-tokenization-key="{key}" data-variant="inline" nonce="{nonce}"></script>
<script nonce="{nonce}">
window.seenMessages = [];
window.addEventListener("message", function (event) {{ window.seenMessages.push(JSON.stringify(event.data)); }});
function note(field, valid, message) {{
  var item = document.createElement("li");
  item.setAttribute("data-field", field);
  item.setAttribute("data-valid", String(valid));
  item.textContent = message;
  document.getElementById("validations").appendChild(item);
}}
window.CollectJS.configure({{
  variant: "inline",
  customCss: {{ "border-color": "#57606a", "font-size": "16px" }},
  focusCss: {{ "outline": "2px solid #2e7d32" }},
  invalidCss: {{ "border-color": "#b42318" }},
  fields: {{
    ccnumber: {{ selector: "#card-number", title: "Card number", placeholder: "1234 1234 1234 1234" }},
    ccexp: {{ selector: "#card-expiry", title: "Expiry date", placeholder: "MM / YY" }},
    cvv: {{ display: "required", selector: "#card-cvv", title: "Security code", placeholder: "CVC" }}
  }},
  fieldsAvailableCallback: function () {{ document.body.setAttribute("data-fields", "available"); }},
  validationCallback: note,
  callback: function (response) {{ document.getElementById("result").textContent = JSON.stringify(response); }}
}});
</script>
</body>
</html>
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(sandbox: Platform) -> AsyncIterator[Any]:
    from support.browser import serving

    async with serving(sandbox) as served:
        yield served


@pytest_asyncio.fixture(loop_scope="session")
async def browser_page(live: Any) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    from support.browser import launch_chromium, new_page

    playwright = await async_playwright().start()
    try:
        browser = await launch_chromium(playwright)
        try:
            context, page = await new_page(browser, "desktop")
            yield page
            await context.close()
        finally:
            await browser.close()
    finally:
        await playwright.stop()


async def test_collect_js_in_a_browser(sandbox: Platform, live: Any, browser_page: Any) -> None:
    from support.browser import axe_check

    page = browser_page
    nonce = "n" + uuid.uuid4().hex
    key = await key_of(sandbox, ALPHA)
    url = live.url(ALPHA, "/checkout")
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))

    def tokenize_requests() -> list[Any]:
        return [request for request in requests if request.url.endswith("/sandbox-gateway/tokenize")]

    async def merchant_page(route: Any) -> None:
        from portal.web.headers import content_security_policy

        await route.fulfill(
            status=200,
            headers={
                "content-type": "text/html; charset=utf-8",
                "content-security-policy": content_security_policy(nonce),
            },
            body=MERCHANT_PAGE.format(key=key, nonce=nonce),
        )

    await page.route(url, merchant_page)
    await page.goto(url)
    await page.wait_for_selector("body[data-fields='available']")
    frames = {name: page.frame_locator(f"#{holder} iframe") for name, holder in (
        ("ccnumber", "card-number"), ("ccexp", "card-expiry"), ("cvv", "card-cvv"))}  # fmt: skip
    assert await page.locator("#card-number iframe").get_attribute("title") == "Card number"
    number = frames["ccnumber"].get_by_role("textbox", name="Card number")
    expiry = frames["ccexp"].get_by_role("textbox", name="Expiry date")
    cvv = frames["cvv"].get_by_role("textbox", name="Security code")
    assert await number.get_attribute("autocomplete") == "cc-number"
    await axe_check(page)

    await number.fill("4111 1111 1111 1112")
    await expiry.fill(FUTURE)
    await page.click("#payButton")
    await page.locator("#validations li[data-field='cvv'][data-valid='false']").wait_for()
    invalid = page.locator("#validations li[data-valid='false']")
    reported = await invalid.evaluate_all("items => items.map(i => i.dataset.field + ': ' + i.textContent)")
    assert set(reported) == {
        "ccnumber: Card number is invalid",
        "cvv: CVV is required",
    }  # on leaving a field, and on paying
    assert "Success" in await page.locator("#validations li[data-field='ccexp'][data-valid='true']").all_text_contents()
    assert await number.get_attribute("aria-invalid") == "true"
    assert await page.text_content("#result") == ""
    await axe_check(page)

    await number.fill("4929 1234 5678 9015")  # passes the Luhn check, but no test card: never sent
    await cvv.fill("123")
    await page.click("#payButton")
    # reported on leaving the field and again on paying; how many arrived by now depends on timing
    await page.locator("#validations li[data-field='ccnumber']", has_text=NOT_A_TEST_CARD).first.wait_for()
    assert tokenize_requests() == []
    assert await page.text_content("#result") == ""

    await number.fill("4000 0000 0000 0341")
    await page.click("#payButton")
    await page.locator("#result:not(:empty)").wait_for()
    result = await page.text_content("#result") or "{}"
    response = json.loads(result)
    assert response["tokenType"] == "inline" and response["token"].startswith("sbx_tok_")
    assert response["card"] == {
        "number": "400000******0341",
        "bin": "400000",
        "exp": FUTURE[:2] + FUTURE[-2:],
        "type": "visa",
        "hash": "",
    }
    card_number = ("4000000000000341", "4000 0000 0000 0341")
    seen_by_page = [result, *await page.evaluate("window.seenMessages")]  # the callback, and every message
    assert not [seen for seen in seen_by_page if any(form in seen for form in card_number)]
    assert any("400000******0341" in seen for seen in seen_by_page)
    [sent] = tokenize_requests()  # only the number frame's own POST carries the card
    assert sent.method == "POST" and "/sandbox-gateway/fields/ccnumber?" in sent.frame.url
    assert json.loads(sent.post_data)["ccnumber"] == "4000 0000 0000 0341"
    for request in requests:
        if request is sent:
            continue
        carried = " ".join((request.url, request.post_data or "", *(await request.all_headers()).values()))
        assert not any(form in carried for form in card_number), request.url
    assert problems == []

    entry = await (await adapter(sandbox, ALPHA)).vault_add(
        payment_token=response["token"], vault_id=None, billing_id="pm_browser", customer=CUSTOMER
    )
    assert entry.card.last4 == "0341"
