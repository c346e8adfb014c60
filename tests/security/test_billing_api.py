"""The billing API: other tenants' ids are 404, bodies are checked, errors write nothing, keys are idempotent."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
import pytest_asyncio
from security.conftest import api_key, bearer

from portal.db.engine import fetch, tenant_transaction
from portal.payments.methods import PaymentMethodError, attach
from portal.payments.sandbox import SandboxAdapter
from portal.platform import Platform
from portal.tenancy.models import CustomerView
from portal.testing import apply_tenants, customer_id

API = "api.portal.localhost"
SHOP = "t-billapi-shop"
SISTER = "t-billapi-sister"  # another merchant of the same ISO
STRANGER = "t-billapi-other-shop"  # a merchant of another ISO
NO_SANDBOX = "t-billapi-live"  # same ISO, no sandbox gateway: no test clock
TENANTS = f"""
[[isos]]
slug = "t-billapi"
name = "Billing API ISO"

[[isos.merchants]]
slug = "{SHOP}"
name = "Billing shop"
[isos.merchants.gateway]
key = "sandbox"
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"
[[isos.merchants.customers]]
email = "sam@globalco.com"
name = "Sam Carter"

[[isos.merchants]]
slug = "{SISTER}"
name = "Sister shop"
[isos.merchants.gateway]
key = "sandbox"
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"

[[isos.merchants]]
slug = "{NO_SANDBOX}"
name = "Live shop"
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"

[[isos]]
slug = "t-billapi-other"
name = "Other ISO"

[[isos.merchants]]
slug = "{STRANGER}"
name = "Stranger shop"
[isos.merchants.gateway]
key = "sandbox"
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"
"""
LEDGER = (
    "portal_billing_product",
    "portal_billing_price",
    "portal_billing_subscription",
    "portal_billing_invoice",
    "portal_billing_invoice_line",
    "portal_billing_payment_attempt",
)


def host(slug: str) -> str:
    return f"{slug}.portal.localhost"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(shared_tenants: Platform, tmp_path_factory) -> Platform:
    await apply_tenants(shared_tenants, TENANTS, tmp_path_factory.mktemp("billing-api"))
    return shared_tenants


class Caller:
    """An API client with one key."""

    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key

    async def post(self, path: str, body: Any = None, **headers: str) -> Any:
        return await self.client.post(f"/api/v1{path}", json=body, headers={**bearer(self.key), **headers})

    async def patch(self, path: str, body: Any, **headers: str) -> Any:
        return await self.client.patch(f"/api/v1{path}", json=body, headers={**bearer(self.key), **headers})

    async def get(self, path: str) -> Any:
        return await self.client.get(f"/api/v1{path}", headers=bearer(self.key))


@pytest_asyncio.fixture(loop_scope="session")
async def shop(platform, portal_client) -> Caller:
    return Caller(portal_client(API), await api_key(platform, host(SHOP)))


async def caller_for(platform, portal_client, slug: str) -> Caller:
    return Caller(portal_client(API), await api_key(platform, host(slug)))


async def catalog(caller: Caller, *, currency: str = "USD", amount: int = 3900) -> tuple[str, str]:
    product = await caller.post("/products", {"name": f"Bread box {secrets.token_hex(3)}"})
    assert product.status_code == 201, product.text
    price = await caller.post(
        "/prices",
        {"product": product.json()["id"], "currency": currency, "unit_amount": amount, "interval": "month"},
    )
    assert price.status_code == 201, price.text
    return product.json()["id"], price.json()["id"]


async def ledger_counts(platform: Platform, slug: str) -> dict[str, int]:
    tenant = await platform.tenants.resolve(host(slug))
    assert tenant is not None
    async with tenant_transaction(tenant.merchant.iso_id):
        return {
            table: (await fetch(f"SELECT count(*) AS n FROM {table} WHERE merchant_id = $1", tenant.merchant.id))[0][
                "n"
            ]
            for table in LEDGER
        }


async def add_card(platform: Platform, portal_client, slug: str, email: str) -> str:
    """Put a sandbox Visa on file for a customer; its id."""
    tenant = await platform.tenants.resolve(host(slug))
    assert tenant is not None
    adapter = platform.gateways.for_tenant(tenant)
    assert isinstance(adapter, SandboxAdapter)
    body = {"tokenization_key": adapter.tokenization_key, "ccnumber": "4111111111111111", "ccexp": "1230", "cvv": "123"}
    tokenized = await portal_client(host(slug)).post("/sandbox-gateway/tokenize", json=body)
    assert tokenized.status_code == 200, tokenized.text
    cid = await customer_id(slug, email)
    customer = CustomerView(id=cid, merchant_id=tenant.merchant.id, email=email, name="")
    try:
        attached = await attach(platform.gateways, tenant, customer, tokenized.json()["token"], make_default=True)
    except PaymentMethodError as exc:  # on file already (an earlier test of the module)
        assert exc.code == "duplicate" and exc.method_id is not None
        return exc.method_id
    return attached.method.id


async def objects_of(platform, portal_client, slug: str) -> dict[str, str]:
    """A product, price, subscription, invoice and card at ``slug``'s merchant."""
    caller = await caller_for(platform, portal_client, slug)
    product, price = await catalog(caller)
    jane = await customer_id(slug, "jane@globalco.com")
    subscription = await caller.post("/subscriptions", {"customer": jane, "price": price})
    assert subscription.status_code == 201, subscription.text
    invoice = await caller.post(
        "/invoices", {"customer": jane, "currency": "USD", "lines": [{"description": "Cake", "unit_amount": 1200}]}
    )
    assert invoice.status_code == 201, invoice.text
    card = await add_card(platform, portal_client, slug, "jane@globalco.com")
    return {
        "product": product,
        "price": price,
        "subscription": subscription.json()["id"],
        "invoice": invoice.json()["id"],
        "customer": jane,
        "card": card,
    }


def every_route(ids: dict[str, str], own_price: str) -> list[tuple[str, str, Any]]:
    sub, inv, cus = ids["subscription"], ids["invoice"], ids["customer"]
    return [
        ("GET", f"/products/{ids['product']}", None),
        ("POST", f"/products/{ids['product']}/archive", {}),
        ("GET", f"/prices/{ids['price']}", None),
        ("POST", f"/prices/{ids['price']}/archive", {}),
        ("POST", "/prices", {"product": ids["product"], "currency": "USD", "unit_amount": 1, "interval": "day"}),
        ("POST", "/subscriptions", {"customer": cus, "price": own_price}),
        ("GET", f"/subscriptions/{sub}", None),
        ("GET", f"/subscriptions?customer={cus}", None),
        ("PATCH", f"/subscriptions/{sub}", {"quantity": 2}),
        ("POST", f"/subscriptions/{sub}/preview-change", {"quantity": 2}),
        ("POST", f"/subscriptions/{sub}/pause", {}),
        ("POST", f"/subscriptions/{sub}/resume", None),
        ("POST", f"/subscriptions/{sub}/cancel", {"at_period_end": True}),
        ("POST", f"/subscriptions/{sub}/undo-cancel", None),
        ("POST", "/invoices", {"customer": cus, "currency": "USD", "lines": [{"description": "x", "unit_amount": 1}]}),
        ("GET", f"/invoices/{inv}", None),
        ("GET", f"/invoices?customer={cus}", None),
        ("POST", f"/invoices/{inv}/finalize", None),
        ("POST", f"/invoices/{inv}/pay", {}),
        ("POST", f"/invoices/{inv}/void", None),
        ("POST", f"/invoices/{inv}/mark-uncollectible", None),
        ("GET", f"/customers/{cus}/payment-methods", None),
        ("GET", f"/customers/{cus}/payment-methods/{ids['card']}", None),
    ]


@pytest.mark.parametrize("other", [SISTER, STRANGER], ids=["same-iso", "other-iso"])
async def test_another_tenants_ids_are_404_on_every_route(platform, portal_client, shop, other) -> None:
    foreign = await objects_of(platform, portal_client, other)
    _, own_price = await catalog(shop)
    before = await ledger_counts(platform, other)
    iso_key = Caller(portal_client(API), await api_key(platform, None, iso_host=host(SHOP)))
    callers = [shop, iso_key] if other == STRANGER else [shop]
    for caller in callers:
        for method, path, body in every_route(foreign, own_price):
            if method == "GET":
                response = await caller.get(path)
            elif method == "PATCH":
                response = await caller.patch(path, body)
            else:
                response = await caller.post(path, body if body is not None else {})
            assert response.status_code == 404, (method, path, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    assert await ledger_counts(platform, other) == before
    # on the other merchant's own host, the shop's key is refused outright
    on_host = await portal_client(host(other)).get(
        f"/api/v1/subscriptions/{foreign['subscription']}", headers=bearer(shop.key)
    )
    assert on_host.status_code == 403


async def test_an_iso_key_reaches_its_merchants_objects(platform, portal_client) -> None:
    sister = await objects_of(platform, portal_client, SISTER)
    iso_key = Caller(portal_client(API), await api_key(platform, None, iso_host=host(SHOP)))
    assert (await iso_key.get(f"/subscriptions/{sister['subscription']}")).status_code == 200
    listed = await iso_key.get(f"/invoices?customer={sister['customer']}")
    assert listed.status_code == 200 and sister["invoice"] in [i["id"] for i in listed.json()["data"]]
    unnamed = await iso_key.get("/products")
    assert unnamed.status_code == 404  # an ISO key names the merchant
    named = await iso_key.get(f"/products?merchant={SISTER}")
    assert named.status_code == 200 and sister["product"] in [p["id"] for p in named.json()["data"]]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/products", {"name": ""}, "name"),
        ("/products", {"name": "a\nb"}, "name"),
        ("/products", {}, "name"),
        ("/products", {"name": "Bread", "colour": "red"}, "colour"),
        ("/prices", {"product": "prod_x", "currency": "usd", "unit_amount": 1, "interval": "month"}, "currency"),
        ("/prices", {"product": "prod_x", "currency": "USD", "unit_amount": -1, "interval": "month"}, "unit_amount"),
        ("/prices", {"product": "prod_x", "currency": "USD", "unit_amount": 1, "interval": "fortnight"}, "interval"),
        ("/prices", {"product": "prod_x", "currency": "USD", "unit_amount": 1.5, "interval": "day"}, "unit_amount"),
        ("/subscriptions", {"customer": "cus_x", "price": "price_x", "quantity": 0}, "quantity"),
        ("/subscriptions", {"customer": "cus_x", "price": "price_x", "trial_end": "tomorrow"}, "trial_end"),
        ("/subscriptions", {"customer": "cus_x", "price": "price_x", "trial_end": "2027-02-30T00:00:00Z"}, "trial_end"),
        ("/invoices", {"customer": "cus_x", "currency": "USD", "lines": []}, "lines"),
        (
            "/invoices",
            {"customer": "cus_x", "currency": "USD", "lines": [{"description": "x"}]},
            "lines[0].unit_amount",
        ),
        (
            "/invoices",
            {"customer": "cus_x", "currency": "USD", "lines": [{"description": "x", "unit_amount": 1, "quantity": 0}]},
            "lines[0].quantity",
        ),
        ("/test-clock/advance", {"by": "forever"}, "by"),
        ("/test-clock/advance", {}, "to"),
    ],
)
async def test_a_schema_invalid_body_is_422_naming_the_field(shop, path, body, field) -> None:
    response = await shop.post(path, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert f"'{field}'" in problem["detail"], problem
    assert any(error["key"] == field for error in problem["errors"]), problem


async def test_a_subscription_change_without_a_change_is_422(platform, shop) -> None:
    _, price = await catalog(shop)
    jane = await customer_id(SHOP, "jane@globalco.com")
    sub = (await shop.post("/subscriptions", {"customer": jane, "price": price})).json()["id"]
    response = await shop.patch(f"/subscriptions/{sub}", {"proration_behavior": "none"})
    assert response.status_code == 422 and response.json()["errors"][0]["key"] == "price"


async def test_nothing_is_written_on_an_error(platform, portal_client, shop) -> None:
    product, price = await catalog(shop)
    jane = await customer_id(SHOP, "jane@globalco.com")
    stranger_jane = await customer_id(STRANGER, "jane@globalco.com")
    assert (await shop.post(f"/prices/{price}/archive", {})).status_code == 200
    before = await ledger_counts(platform, SHOP)
    lines = [{"description": "Cake", "unit_amount": 100}]
    failures = [
        ("/subscriptions", {"customer": jane, "price": price}, 409, "inactive_price"),
        ("/subscriptions", {"customer": stranger_jane, "price": price}, 404, None),
        ("/subscriptions", {"customer": jane, "price": "price_nope"}, 404, "not_found"),
        ("/invoices", {"customer": jane, "currency": "XYZ", "lines": lines}, 422, "invalid_currency"),
        ("/invoices", {"customer": jane, "currency": "USD", "lines": [*lines, {"description": " ", "unit_amount": 1}]},
         422, "invalid_line"),
        ("/prices", {"product": product, "currency": "QQQ", "unit_amount": 1, "interval": "day"}, 422, None),
        ("/subscriptions", {"customer": jane, "price": price, "quantity": 10**7}, 422, None),
    ]  # fmt: skip
    for path, body, status, code in failures:
        response = await shop.post(path, body)
        assert response.status_code == status, (path, body, response.text)
        if code is not None:
            assert response.json()["code"] == code, response.text
    assert await ledger_counts(platform, SHOP) == before


async def test_subscription_lifecycle_and_invoices_in_euros(platform, portal_client, shop) -> None:
    _, price = await catalog(shop, currency="EUR", amount=1999)
    assert (await shop.get(f"/prices/{price}")).json()["currency"] == "EUR"
    sam = await customer_id(SHOP, "sam@globalco.com")
    created = await shop.post("/subscriptions", {"customer": sam, "price": price, "quantity": 2})
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["object"] == "subscription" and sub["status"] == "active" and sub["quantity"] == 2
    invoices = (await shop.get(f"/invoices?customer={sam}&status=open")).json()["data"]
    first = next(i for i in invoices if i["subscription"] == sub["id"])
    assert first["currency"] == "EUR" and first["total"] == 3998 and first["number"].startswith("INV-")
    preview = await shop.post(f"/subscriptions/{sub['id']}/preview-change", {"quantity": 3})
    assert preview.status_code == 200 and preview.json()["currency"] == "EUR", preview.text
    assert preview.json()["amount_due_now"] >= 0
    changed = await shop.patch(f"/subscriptions/{sub['id']}", {"quantity": 3, "proration_behavior": "none"})
    assert changed.status_code == 200 and changed.json()["quantity"] == 3
    paused = await shop.post(f"/subscriptions/{sub['id']}/pause", {"reason": "holiday"})
    assert paused.json()["status"] == "paused" and paused.json()["pause_reason"] == "holiday"
    assert (await shop.post(f"/subscriptions/{sub['id']}/pause", {})).status_code == 409
    assert (await shop.post(f"/subscriptions/{sub['id']}/resume", {})).json()["status"] == "active"
    scheduled = await shop.post(f"/subscriptions/{sub['id']}/cancel", {"at_period_end": True, "reason": "moving"})
    assert scheduled.json()["cancel_at_period_end"] is True
    assert (await shop.post(f"/subscriptions/{sub['id']}/undo-cancel", {})).json()["cancel_at_period_end"] is False
    undo_again = await shop.post(f"/subscriptions/{sub['id']}/undo-cancel", {})
    assert undo_again.status_code == 409 and undo_again.json()["code"] == "invalid_transition"
    ended = await shop.post(f"/subscriptions/{sub['id']}/cancel", {"comment": "Too much bread.\nReally."})
    assert ended.json()["status"] == "canceled" and ended.json()["canceled_at"]
    canceled = (await shop.get(f"/subscriptions?customer={sam}&status=canceled")).json()["data"]
    assert sub["id"] in [s["id"] for s in canceled]
    # a one-off invoice in euros: draft, finalize, mark uncollectible, void
    draft = await shop.post(
        "/invoices",
        {"customer": sam, "currency": "EUR", "tax": 100,
         "lines": [{"description": "Wedding cake", "unit_amount": 25000, "quantity": 2}]},
    )  # fmt: skip
    assert draft.status_code == 201, draft.text
    invoice = draft.json()
    assert (invoice["status"], invoice["subtotal"], invoice["total"], invoice["number"]) == (
        "draft",
        50000,
        50100,
        None,
    )
    assert invoice["hosted"] is True and invoice["lines"][0]["amount"] == 50000
    final = (await shop.post(f"/invoices/{invoice['id']}/finalize", {})).json()
    assert final["status"] == "open" and final["number"].startswith("INV-") and final["amount_due"] == 50100
    assert (await shop.post(f"/invoices/{invoice['id']}/finalize", {})).status_code == 409
    assert (await shop.post(f"/invoices/{invoice['id']}/mark-uncollectible", {})).json()["status"] == "uncollectible"
    assert (await shop.post(f"/invoices/{invoice['id']}/void", {})).json()["status"] == "void"
    assert (await shop.get(f"/invoices/{invoice['id']}")).json()["status"] == "void"


async def test_pay_now_charges_the_card_on_file(platform, portal_client, shop) -> None:
    card = await add_card(platform, portal_client, SHOP, "jane@globalco.com")
    jane = await customer_id(SHOP, "jane@globalco.com")
    methods = await shop.get(f"/customers/{jane}/payment-methods")
    assert methods.status_code == 200 and methods.json()["data"][0]["id"] == card
    one = (await shop.get(f"/customers/{jane}/payment-methods/{card}")).json()
    assert one["object"] == "payment_method" and one["card"]["last4"] == "1111" and one["default"] is True
    assert (await shop.get(f"/customers/{jane}/payment-methods/pm_nope")).status_code == 404
    invoice = await shop.post(
        "/invoices", {"customer": jane, "currency": "USD", "lines": [{"description": "Cake", "unit_amount": 4500}]}
    )
    invoice_id = invoice.json()["id"]
    not_open = await shop.post(f"/invoices/{invoice_id}/pay", {})
    assert not_open.status_code == 409, not_open.text
    await shop.post(f"/invoices/{invoice_id}/finalize", {})
    paid = await shop.post(f"/invoices/{invoice_id}/pay", {}, **{"Idempotency-Key": "pay-" + invoice_id})
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert body["payment"]["outcome"] == "approved" and body["payment"]["amount"] == 4500
    assert body["invoice"]["status"] == "paid" and body["invoice"]["amount_due"] == 0
    again = await shop.post(f"/invoices/{invoice_id}/pay", {}, **{"Idempotency-Key": "pay-" + invoice_id})
    assert again.status_code == 200 and again.json() == body and again.headers["idempotent-replayed"] == "true"
    assert (await ledger_counts(platform, SHOP))["portal_billing_payment_attempt"] >= 1
    tenant = await platform.tenants.resolve(host(SHOP))
    async with tenant_transaction(tenant.merchant.iso_id):
        attempts = await fetch(
            "SELECT count(*) AS n FROM portal_billing_payment_attempt WHERE invoice_id = $1", invoice_id
        )
    assert attempts[0]["n"] == 1


async def test_cursor_pagination(platform, portal_client) -> None:
    caller = await caller_for(platform, portal_client, SISTER)
    made = [(await caller.post("/products", {"name": f"Loaf {n}"})).json()["id"] for n in range(5)]
    seen: list[str] = []
    path = "/products?limit=2"
    while True:
        page = (await caller.get(path)).json()
        assert page["object"] == "list" and len(page["data"]) <= 2
        seen += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            break
        path = f"/products?limit=2&starting_after={page['data'][-1]['id']}"
    assert len(seen) == len(set(seen)) and seen == sorted(seen, reverse=True)
    assert seen[:5] == list(reversed(made))
    exact = (await caller.get(f"/products?limit=1&starting_after={seen[-2]}")).json()
    assert exact["data"][0]["id"] == seen[-1] and exact["has_more"] is False
    assert (await caller.get("/products?limit=0")).status_code == 400
    assert (await caller.get("/products?limit=101")).status_code == 400


async def test_scopes(platform, portal_client) -> None:
    reader = Caller(portal_client(API), await api_key(platform, host(SHOP), scopes=["billing:read"]))
    assert (await reader.get("/products")).status_code == 200
    refused = await reader.post("/products", {"name": "Bread"})
    assert refused.status_code == 403 and "billing:write" in refused.json()["detail"]
    customers_only = Caller(portal_client(API), await api_key(platform, host(SHOP), scopes=["customers:read"]))
    assert (await customers_only.get("/invoices")).status_code == 403


# --- idempotency ------------------------------------------------------------------------------


async def test_the_same_key_and_body_replays_the_first_answer(platform, shop) -> None:
    key = "idem-" + secrets.token_hex(8)
    first = await shop.post("/products", {"name": "Rye", "description": "Dark"}, **{"Idempotency-Key": key})
    assert first.status_code == 201
    before = await ledger_counts(platform, SHOP)
    # the same JSON with its keys in another order is the same body
    second = await shop.client.post(
        "/api/v1/products",
        content=b'{ "description": "Dark", "name": "Rye" }',
        headers={**bearer(shop.key), "Idempotency-Key": key, "content-type": "application/json"},
    )
    assert second.status_code == 201 and second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"].startswith("application/json")
    assert await ledger_counts(platform, SHOP) == before
    other_body = await shop.post("/products", {"name": "Spelt"}, **{"Idempotency-Key": key})
    assert other_body.status_code == 409, other_body.text
    assert other_body.headers["content-type"].startswith("application/problem+json")
    assert other_body.json()["code"] == "idempotency_key_reused"
    other_path = await shop.post(f"/products/{first.json()['id']}/archive", {"name": "Rye", "description": "Dark"},
                                 **{"Idempotency-Key": key})  # fmt: skip
    assert other_path.status_code == 409
    assert await ledger_counts(platform, SHOP) == before
    assert (await shop.get(f"/products/{first.json()['id']}")).json()["active"] is True


async def test_keys_belong_to_one_api_key_and_expire_after_a_day(platform, portal_client, shop) -> None:
    key = "idem-" + secrets.token_hex(8)
    first = await shop.post("/products", {"name": "Rye"}, **{"Idempotency-Key": key})
    other = Caller(portal_client(API), await api_key(platform, host(SHOP)))
    second = await other.post("/products", {"name": "Rye"}, **{"Idempotency-Key": key})
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    tenant = await platform.tenants.resolve(host(SHOP))
    async with tenant_transaction(tenant.merchant.iso_id):
        aged = await fetch(
            "UPDATE portal_idempotency_key SET created_at = now() - interval '25 hours' "
            "WHERE merchant_id = $1 AND path = '/api/v1/products' AND response->>'body' LIKE $2 RETURNING key_hash",
            tenant.merchant.id,
            f"%{first.json()['id']}%",
        )
    assert len(aged) == 1
    third = await shop.post("/products", {"name": "Rye"}, **{"Idempotency-Key": key})
    assert third.status_code == 201 and third.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in third.headers


async def test_refusals_before_running_and_5xx_are_not_kept(platform, shop) -> None:
    key = "idem-" + secrets.token_hex(8)
    invalid = await shop.post("/products", {"name": ""}, **{"Idempotency-Key": key})
    assert invalid.status_code == 422
    fixed = await shop.post("/products", {"name": "Barley"}, **{"Idempotency-Key": key})
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers
    refused = await shop.post("/products", {"name": "x"}, **{"Idempotency-Key": "k" * 256})
    assert refused.status_code == 400 and "Idempotency-Key" in refused.json()["detail"]
    # a ledger refusal (409/422 with a code) is an answer: it is kept and replayed
    _, price = await catalog(shop)
    await shop.post(f"/prices/{price}/archive", {})
    jane = await customer_id(SHOP, "jane@globalco.com")
    key = "idem-" + secrets.token_hex(8)
    first = await shop.post("/subscriptions", {"customer": jane, "price": price}, **{"Idempotency-Key": key})
    again = await shop.post("/subscriptions", {"customer": jane, "price": price}, **{"Idempotency-Key": key})
    assert first.status_code == again.status_code == 409 and again.headers["idempotent-replayed"] == "true"


async def test_core_writes_honour_the_key(platform, shop) -> None:
    key = "idem-" + secrets.token_hex(8)
    email = f"idem-{secrets.token_hex(4)}@example.com"
    first = await shop.post("/customers", {"email": email}, **{"Idempotency-Key": key})
    second = await shop.post("/customers", {"email": email}, **{"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201  # not 409 "exists already": the first answer again
    assert first.json() == second.json()


async def test_concurrent_duplicates_run_once(platform, shop) -> None:
    key = "idem-" + secrets.token_hex(8)
    jane = await customer_id(SHOP, "jane@globalco.com")
    _, price = await catalog(shop)
    before = await ledger_counts(platform, SHOP)
    answers = await asyncio.gather(
        *(shop.post("/subscriptions", {"customer": jane, "price": price}, **{"Idempotency-Key": key}) for _ in range(5))
    )
    created = [a for a in answers if a.status_code == 201]
    assert created and all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    assert {a.json()["id"] for a in created} == {created[0].json()["id"]}
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["code"] == "idempotency_key_in_use"
    after = await ledger_counts(platform, SHOP)
    assert after["portal_billing_subscription"] == before["portal_billing_subscription"] + 1


# --- test clocks ------------------------------------------------------------------------------


async def test_the_test_clock_is_for_sandbox_merchants(platform, portal_client) -> None:
    live = await caller_for(platform, portal_client, NO_SANDBOX)
    refused = await live.post("/test-clock/advance", {"by": "1d"})
    assert refused.status_code == 422 and refused.json()["code"] == "clock_not_allowed"
    assert (await live.get("/test-clock")).status_code == 422


async def test_advancing_the_clock_renews(platform, portal_client) -> None:
    caller = await caller_for(platform, portal_client, SISTER)
    await add_card(platform, portal_client, SISTER, "jane@globalco.com")
    _, price = await catalog(caller, amount=1500)
    jane = await customer_id(SISTER, "jane@globalco.com")
    sub = (await caller.post("/subscriptions", {"customer": jane, "price": price})).json()
    moved = await caller.post("/test-clock/advance", {"by": "32d"})
    assert moved.status_code == 200, moved.text
    report = moved.json()
    assert report["object"] == "test_clock_advance" and sub["id"] in report["renewed"]
    clock = (await caller.get("/test-clock")).json()
    assert clock["frozen"] is True and clock["now"] == report["now"]
    renewed = (await caller.get(f"/subscriptions/{sub['id']}")).json()
    assert renewed["current_period_start"] > sub["current_period_start"]
    backwards = await caller.post("/test-clock/advance", {"to": "2020-01-01T00:00:00Z"})
    assert backwards.status_code in (409, 422) and backwards.json()["code"] in ("clock_backwards",)
