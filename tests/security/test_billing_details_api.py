"""``/api/v1/customers/{id}/billing-details``: scoped keys, 404 across tenants, 422 naming the field."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest_asyncio
from security.conftest import api_key, bearer

from portal.db.engine import fetch, tenant_transaction
from portal.platform import Platform
from portal.testing import apply_tenants, customer_id

API = "api.portal.localhost"
SHOP, SISTER, STRANGER = "t-bdapi-shop", "t-bdapi-sister", "t-bdapi-stranger"
TENANTS = f"""
[[isos]]
slug = "t-bdapi"
name = "Billing details API ISO"

[[isos.merchants]]
slug = "{SHOP}"
name = "Details shop"
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"
[[isos.merchants.customers]]
email = "sam@globalco.com"
name = "Sam Carter"
[[isos.merchants.customers]]
email = "max@globalco.com"
name = "Max Miller"

[[isos.merchants]]
slug = "{SISTER}"
name = "Sister shop"
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"

[[isos]]
slug = "t-bdapi-other"
name = "Other ISO"

[[isos.merchants]]
slug = "{STRANGER}"
name = "Stranger shop"
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"
"""
US = {"name": "Globalco Inc.", "line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"}


def host(slug: str) -> str:
    return f"{slug}.portal.localhost"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(shared_tenants: Platform, tmp_path_factory) -> Platform:
    await apply_tenants(shared_tenants, TENANTS, tmp_path_factory.mktemp("billing-details-api"))
    return shared_tenants


async def _key(platform: Platform, slug: str, **options: Any) -> dict[str, str]:
    return bearer(await api_key(platform, host(slug), **options))


def _path(customer: str) -> str:
    return f"/api/v1/customers/{customer}/billing-details"


async def test_read_write_and_replay_with_an_idempotency_key(platform: Platform, portal_client) -> None:
    client, key = portal_client(API), await _key(platform, SHOP)
    sam = await customer_id(SHOP, "sam@globalco.com")
    empty = await client.get(_path(sam), headers=key)
    assert empty.status_code == 200, empty.text
    assert empty.json()["object"] == "customer_billing_details" and empty.json()["line1"] is None
    headers = {**key, "Idempotency-Key": f"bd-{sam}"}
    first = await client.post(_path(sam), json=US, headers=headers)
    assert first.status_code == 200, first.text
    assert {name: first.json()[name] for name in US} == US and first.json()["customer"] == sam
    again = await client.post(_path(sam), json=US, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    partial = await client.post(_path(sam), json={"tax_id": "12-3456789", "line2": "Suite 5"}, headers=key)
    assert partial.status_code == 200, partial.text
    assert partial.json()["city"] == "Springfield" and partial.json()["line2"] == "Suite 5"
    read = await client.get(_path(sam), headers=key)
    assert read.json() == partial.json()
    tenant = await platform.tenants.resolve(host(SHOP))
    assert tenant is not None
    async with tenant_transaction(tenant.merchant.iso_id):
        events = await fetch(
            "SELECT after FROM portal_audit_event WHERE customer_id = $1 AND type = 'customer.updated' ORDER BY seq",
            sam,
        )
    assert len(events) == 2  # the replay ran nothing
    assert "Suite 5" in str(events[1]["after"]) and "Springfield" not in str(events[1]["after"])


async def test_invalid_fields_answer_422_naming_the_field(platform: Platform, portal_client) -> None:
    client, key = portal_client(API), await _key(platform, SHOP)
    jane = await customer_id(SHOP, "jane@globalco.com")
    cases = [
        ({**US, "postal_code": "ABCDE"}, "postal_code"),
        ({**US, "country": "XX"}, "country"),
        ({"line1": "1 Main St"}, "country"),
        ({"country": "DE", "tax_id": "DE12"}, "tax_id"),
        ({"name": "x" * 201}, "name"),
        ({"city": "a\nb"}, "city"),
        ({"surname": "x"}, "surname"),
        ({"line1": 5}, "line1"),
    ]
    for body, field in cases:
        answer = await client.post(_path(jane), json=body, headers=key)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert field in answer.json()["detail"], answer.text
        assert [error["key"] for error in answer.json()["errors"]] == [field]
    assert (await client.get(_path(jane), headers=key)).json()["postal_code"] is None


async def test_other_merchants_and_isos_customers_are_404(platform: Platform, portal_client) -> None:
    client, key = portal_client(API), await _key(platform, SHOP)
    sister_key = await _key(platform, SISTER)
    sister_jane = await customer_id(SISTER, "jane@globalco.com")
    stranger_jane = await customer_id(STRANGER, "jane@globalco.com")
    written = await client.post(_path(sister_jane), json=US, headers=sister_key)
    assert written.status_code == 200, written.text
    for other in (sister_jane, stranger_jane, "cus_doesnotexist"):
        assert (await client.get(_path(other), headers=key)).status_code == 404
        refused = await client.post(_path(other), json={"name": "Hijacked"}, headers=key)
        assert refused.status_code == 404, refused.text
    assert (await client.get(_path(sister_jane), headers=sister_key)).json()["name"] == "Globalco Inc."
    iso_key = bearer(await api_key(platform, None, iso_host=host(SHOP)))
    assert (await client.get(_path(sister_jane), headers=iso_key)).json()["name"] == "Globalco Inc."
    assert (await client.get(_path(stranger_jane), headers=iso_key)).status_code == 404


async def test_scopes_decide_reading_and_writing(platform: Platform, portal_client) -> None:
    client = portal_client(API)
    jane = await customer_id(SHOP, "jane@globalco.com")
    reader = await _key(platform, SHOP, scopes=["customers:read"])
    assert (await client.get(_path(jane), headers=reader)).status_code == 200
    assert (await client.post(_path(jane), json={"name": "X"}, headers=reader)).status_code == 403
    outsider = await _key(platform, SHOP, scopes=["webhooks:read"])
    assert (await client.get(_path(jane), headers=outsider)).status_code == 403
    assert (await client.get(_path(jane))).status_code == 401


async def test_partial_updates_at_once_both_take_effect(platform: Platform, portal_client) -> None:
    client, key = portal_client(API), await _key(platform, SHOP)
    max_ = await customer_id(SHOP, "max@globalco.com")  # a customer of this test only: it leaves details stored
    assert (await client.post(_path(max_), json=US, headers=key)).status_code == 200
    changes = [{"line2": f"Suite {n}"} if n % 2 else {"name": f"Globalco {n}"} for n in range(6)]
    answers = await asyncio.gather(*(client.post(_path(max_), json=change, headers=key) for change in changes))
    assert [answer.status_code for answer in answers] == [200] * 6
    stored = (await client.get(_path(max_), headers=key)).json()
    # Each field holds one of the values written to it: no write put back a stale copy of the other.
    assert stored["line2"] in {"Suite 1", "Suite 3", "Suite 5"}
    assert stored["name"] in {"Globalco 0", "Globalco 2", "Globalco 4"}
    assert stored["city"] == "Springfield"
