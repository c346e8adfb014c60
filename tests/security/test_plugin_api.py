"""A plugin's API route (the example plugin's ``GET /api/v1/example-notes``): scoped, tenant-bound, documented.

The route comes from ``portal_api_routes`` with the scope ``example:read``; it is served on the
API host and on merchant hosts like core's routes, checks the key's scope and merchant, and is
404 wherever the plugin is off.
"""

from __future__ import annotations

from security.conftest import GREENFIELD, NORTHWIND, api_key, bearer, own_merchant

from portal.testing import apply_tenants

API = "api.portal.localhost"
ROUTE = "/api/v1/example-notes"
WITHOUT_EXAMPLE = "t-noexample-shop.portal.localhost"


async def test_the_route_answers_a_key_with_its_scope_on_the_api_and_the_merchant_host(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD, scopes=["example:read"])
    for host in (API, GREENFIELD):
        response = await portal_client(host).get(ROUTE, headers=bearer(key))
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "list" and isinstance(response.json()["data"], list)


async def test_a_key_without_the_scope_is_refused(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD, scopes=["customers:read"])
    response = await portal_client(API).get(ROUTE, headers=bearer(key))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "example:read" in response.json()["detail"]


async def test_another_merchants_key_is_refused_on_the_merchant_host(platform, portal_client) -> None:
    foreign = await api_key(platform, NORTHWIND, scopes=["example:read"])
    response = await portal_client(GREENFIELD).get(ROUTE, headers=bearer(foreign))
    assert response.status_code == 403
    other_iso = await api_key(platform, None, iso_host=NORTHWIND, scopes=["example:read"])
    named = await portal_client(API).get(f"{ROUTE}?merchant=t-greenfield", headers=bearer(other_iso))
    assert named.status_code == 404  # another ISO's merchant does not exist for this key


async def test_the_route_is_404_where_the_plugin_is_off(platform, portal_client, tmp_path) -> None:
    await apply_tenants(platform, own_merchant("t-noexample", plugins=("cards",)), tmp_path)
    key = await api_key(platform, WITHOUT_EXAMPLE, scopes=["example:read"])
    for host in (API, WITHOUT_EXAMPLE):
        response = await portal_client(host).get(ROUTE, headers=bearer(key))
        assert response.status_code == 404, (host, response.text)


async def test_the_route_and_its_scope_are_in_the_openapi_document(platform, portal_client) -> None:
    document = (await portal_client(API).get("/api/docs/openapi.json")).json()
    operation = document["paths"][ROUTE]["get"]
    assert operation["summary"] == "List the merchant's example notes"
    assert {"401", "403", "404", "503"} <= set(operation["responses"])  # core's problems, inherited
    assert "example" in operation["tags"]
