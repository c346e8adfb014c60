"""The API: keys decide the tenant; scopes, other tenants' ids and hosts are refused."""

from __future__ import annotations

import pytest
from security.conftest import GREENFIELD, NORTHWIND, PINNACLE, api_key, bearer

from portal.testing import customer_id

API = "api.portal.localhost"


async def test_missing_invalid_and_revoked_keys_are_401(platform, portal_client) -> None:
    client = portal_client(API)
    missing = await client.get("/api/v1/customers?email=jane@globalco.com")
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["status"] == 401 and missing.json()["title"] == "Unauthorized"
    invalid = await client.get("/api/v1/customers?email=x@y.z", headers=bearer("sk_" + "x" * 43))
    assert invalid.status_code == 401
    key = await api_key(platform, GREENFIELD)
    from portal.api.keys import hash_secret, revoke_api_key
    from portal.db.engine import fetch, tenant_transaction

    tenant = await platform.tenants.resolve(GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        key_id = (await fetch("SELECT id FROM portal_api_key WHERE secret_hash = $1", hash_secret(key)))[0]["id"]
        assert await revoke_api_key(key_id)
    revoked = await client.get("/api/v1/customers?email=x@y.z", headers=bearer(key))
    assert revoked.status_code == 401


async def test_a_key_outside_its_scope_is_403(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD, scopes=["customers:read"])
    client = portal_client(API)
    assert (await client.get("/api/v1/customers?email=jane@globalco.com", headers=bearer(key))).status_code == 200
    created = await client.post("/api/v1/customers", json={"email": "new@example.com"}, headers=bearer(key))
    assert created.status_code == 403 and "customers:write" in created.json()["detail"]
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    session = await client.post("/api/v1/portal-sessions", json={"customer": jane}, headers=bearer(key))
    assert session.status_code == 403


@pytest.mark.parametrize("other", [("t-pinnacle", "same-iso"), ("t-northwind", "other-iso")], ids=lambda o: o[1])
async def test_another_tenants_customer_id_is_404(platform, portal_client, other) -> None:
    key = await api_key(platform, GREENFIELD)
    foreign = await customer_id(other[0], "jane@globalco.com")
    for host in (API, GREENFIELD):
        client = portal_client(host)
        assert (await client.get(f"/api/v1/customers/{foreign}", headers=bearer(key))).status_code == 404
        session = await client.post("/api/v1/portal-sessions", json={"customer": foreign}, headers=bearer(key))
        assert session.status_code == 404
        assert session.json()["detail"] == "No such customer."


async def test_an_iso_key_reaches_its_merchants_only(platform, portal_client) -> None:
    key = await api_key(platform, None, iso_host=GREENFIELD)
    client = portal_client(API)
    pinnacle_jane = await customer_id("t-pinnacle", "jane@globalco.com")
    summit_jane = await customer_id("t-northwind", "jane@globalco.com")
    assert (await client.get(f"/api/v1/customers/{pinnacle_jane}", headers=bearer(key))).status_code == 200
    assert (await client.get(f"/api/v1/customers/{summit_jane}", headers=bearer(key))).status_code == 404
    named = await client.get("/api/v1/customers?email=JANE@globalco.com&merchant=t-apex", headers=bearer(key))
    assert named.status_code == 200 and len(named.json()["data"]) == 1
    other_iso = await client.get("/api/v1/customers?email=jane@globalco.com&merchant=t-northwind", headers=bearer(key))
    assert other_iso.status_code == 404
    unnamed = await client.get("/api/v1/customers?email=jane@globalco.com", headers=bearer(key))
    assert unnamed.status_code == 404


@pytest.mark.parametrize(("host", "kind"), [(PINNACLE, "merchant"), (NORTHWIND, "iso")])
async def test_a_merchant_host_refuses_other_tenants_keys(platform, portal_client, host: str, kind: str) -> None:
    key = (
        await api_key(platform, GREENFIELD)
        if kind == "merchant"
        else await api_key(platform, None, iso_host=GREENFIELD)
    )
    response = await portal_client(host).get("/api/v1/customers?email=jane@globalco.com", headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["detail"] == "This API key belongs to another merchant."


async def test_customers_create_and_lookup(platform, portal_client) -> None:
    key = await api_key(platform, "t-apex.portal.localhost")
    client = portal_client(API)
    created = await client.post(
        "/api/v1/customers",
        json={"email": "Pat@Example.com", "name": "Pat", "external_ref": "apx-99"},
        headers=bearer(key),
    )
    assert created.status_code == 201
    body = created.json()
    assert body["object"] == "customer" and body["id"].startswith("cus_") and body["email"] == "Pat@Example.com"
    again = await client.post("/api/v1/customers", json={"email": "pat@example.com"}, headers=bearer(key))
    assert again.status_code == 409
    by_ref = await client.get("/api/v1/customers?external_ref=apx-99", headers=bearer(key))
    assert [c["id"] for c in by_ref.json()["data"]] == [body["id"]]
    bad = await client.post("/api/v1/customers", json={"email": "not-an-email"}, headers=bearer(key))
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    both = await client.get("/api/v1/customers?email=a@b.c&external_ref=x", headers=bearer(key))
    assert both.status_code == 400


async def test_a_portal_session_url_signs_the_customer_in(platform, portal_client) -> None:
    key = await api_key(platform, PINNACLE)
    jane = await customer_id("t-pinnacle", "jane@globalco.com")
    created = await portal_client(API).post(
        "/api/v1/portal-sessions",
        json={"customer": jane, "return_url": "https://pinnacle.example/account", "locale": "en-GB", "expires_in": 300},
        headers=bearer(key),
    )
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["object"] == "portal_session" and session["id"].startswith("pl_")
    assert session["url"].startswith("https://t-pinnacle.portal.localhost/access/pt1.")
    browser = portal_client(PINNACLE)
    landed = await browser.get(session["url"].removeprefix("https://t-pinnacle.portal.localhost"))
    assert landed.status_code == 303
    page = await browser.get("/")
    assert 'href="https://pinnacle.example/account"' in page.text and '<html lang="en-GB">' in page.text
    revoked = await portal_client(API).post(f"/api/v1/portal-links/{session['id']}/revoke", headers=bearer(key))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await browser.get("/")).status_code == 303  # revocation ended the session


async def test_flows_must_exist_and_be_on_for_the_merchant(platform, portal_client) -> None:
    jane_pinnacle = await customer_id("t-pinnacle", "jane@globalco.com")
    jane_greenfield = await customer_id("t-greenfield", "jane@globalco.com")
    client = portal_client(API)
    pinnacle_key, greenfield_key = await api_key(platform, PINNACLE), await api_key(platform, GREENFIELD)
    unknown = await client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane_greenfield, "flow": {"type": "teleport"}},
        headers=bearer(greenfield_key),
    )
    assert unknown.status_code == 422
    off = await client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane_pinnacle, "flow": {"type": "example_notes"}},
        headers=bearer(pinnacle_key),
    )
    assert off.status_code == 422 and "not available" in off.json()["detail"]
    on = await client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane_greenfield, "flow": {"type": "example_notes"}},
        headers=bearer(greenfield_key),
    )
    assert on.status_code == 201 and on.json()["flow"] == "example_notes"
    browser = portal_client("portal.greenfield.test")
    landed = await browser.get(on.json()["url"].removeprefix("https://portal.greenfield.test"))
    assert landed.status_code == 303 and landed.headers["location"] == "/example"


async def test_openapi_document_is_served(platform, portal_client) -> None:
    document = await portal_client(API).get("/api/docs/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    assert {"/api/v1/customers", "/api/v1/portal-sessions", "/api/v1/portal-links/{link_id}/revoke"} <= set(paths)


async def test_an_iso_key_on_a_merchant_host_acts_only_for_that_merchant(platform, portal_client) -> None:
    key = await api_key(platform, None, iso_host=GREENFIELD)
    client = portal_client(PINNACLE)
    other = await client.post(
        "/api/v1/customers", json={"email": "cross@example.com", "merchant": "t-apex"}, headers=bearer(key)
    )
    assert other.status_code == 404
    own = await client.post(
        "/api/v1/customers", json={"email": "cross@example.com", "merchant": "t-pinnacle"}, headers=bearer(key)
    )
    assert own.status_code == 201


async def test_a_merchant_key_may_name_its_own_merchant_by_slug(platform, portal_client) -> None:
    key = await api_key(platform, PINNACLE)
    response = await portal_client(API).get(
        "/api/v1/customers?email=jane@globalco.com&merchant=t-pinnacle", headers=bearer(key)
    )
    assert response.status_code == 200 and len(response.json()["data"]) == 1
    other = await portal_client(API).get(
        "/api/v1/customers?email=jane@globalco.com&merchant=t-greenfield", headers=bearer(key)
    )
    assert other.status_code == 404


async def test_malformed_ids_are_404_not_errors(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    client = portal_client(API)
    assert (await client.post(f"/api/v1/portal-links/{'x' * 200}/revoke", headers=bearer(key))).status_code == 404
    bad_flow = await client.post(
        "/api/v1/portal-sessions",
        json={"customer": jane, "flow": {"type": "example_notes", "id": "inv_short"}},
        headers=bearer(key),
    )
    assert bad_flow.status_code == 422


async def test_the_openapi_document_lists_only_the_api(platform, portal_client) -> None:
    paths = (await portal_client(API).get("/api/docs/openapi.json")).json()["paths"]
    assert all(path.startswith("/api/v1/") for path in paths), sorted(paths)
