"""Dashboard-side disclosure: ``other_merchants_count`` and ``other-merchants`` for merchants, overlaps and
the names policy for ISO keys; another merchant's or ISO's customer is 404."""

from __future__ import annotations

from plugins.merchant_switch.conftest import APEX, FAR, GREENFIELD, NAMES, OFF, PINNACLE, World, host
from security.conftest import api_key, bearer

API = "api.portal.localhost"


async def test_the_customer_record_and_other_merchants(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE, APEX, OFF, FAR)
    platform = world.platform
    key = await api_key(platform, host(GREENFIELD), scopes=["customers:read"])
    iso_key = await api_key(platform, None, iso_host=host(GREENFIELD), scopes=["merchant_switch:write"])
    assert world.client_for is not None
    api = world.client_for(API)
    record = await api.get(f"/api/v1/customers/{jane[GREENFIELD].customer_id}", headers=bearer(key))
    assert record.status_code == 200 and record.json()["other_merchants_count"] == 2
    off_key = await api_key(platform, host(OFF), scopes=["customers:read"])
    off_record = await api.get(f"/api/v1/customers/{jane[OFF].customer_id}", headers=bearer(off_key))
    assert off_record.json()["other_merchants_count"] is None  # switching is off there

    path = f"/api/v1/customers/{jane[GREENFIELD].customer_id}/other-merchants"
    assert (await api.put("/api/v1/merchant-switch/policy", json={"disclose_merchant_names": False},
                          headers=bearer(iso_key))).status_code == 200  # fmt: skip
    hidden = (await api.get(path, headers=bearer(key))).json()
    assert hidden["count"] == 2 and hidden["merchant_names"] is None
    assert (await api.put("/api/v1/merchant-switch/policy", json={"disclose_merchant_names": True},
                          headers=bearer(iso_key))).json() == {"disclose_merchant_names": True}  # fmt: skip
    shown = (await api.get(path, headers=bearer(key))).json()
    assert sorted(shown["merchant_names"]) == sorted([NAMES[APEX], NAMES[PINNACLE]])
    for foreign in (jane[PINNACLE].customer_id, jane[FAR].customer_id, "cus_01jzzzzzzzzzzzzzzzzzzzzzzz"):
        assert (await api.get(f"/api/v1/customers/{foreign}/other-merchants", headers=bearer(key))).status_code == 404


async def test_iso_keys_list_overlaps_within_their_iso_only(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE, OFF, FAR)
    email = (await world.person(GREENFIELD))[GREENFIELD]  # someone else, never listed
    platform = world.platform
    iso_key = await api_key(platform, None, iso_host=host(GREENFIELD), scopes=["merchant_switch:read"])
    merchant_key = await api_key(platform, host(GREENFIELD), scopes=["customers:read"])
    assert world.client_for is not None
    api = world.client_for(API)
    found = await api.get(
        "/api/v1/merchant-switch/overlaps",
        params={"email": (await api.get(f"/api/v1/customers/{jane[GREENFIELD].customer_id}",
                                         headers=bearer(merchant_key))).json()["email"].upper()},
        headers=bearer(iso_key),
    )  # fmt: skip
    assert found.status_code == 200
    rows = found.json()["data"]
    assert {r["customer"] for r in rows} == {jane[s].customer_id for s in (GREENFIELD, PINNACLE, OFF)}
    assert {r["merchant_name"]: r["switch_enabled"] for r in rows}[NAMES[OFF]] is False
    assert email.customer_id not in found.text and jane[FAR].customer_id not in found.text
    denied = await api.get("/api/v1/merchant-switch/overlaps", params={"email": "a@b.co"}, headers=bearer(merchant_key))
    assert denied.status_code == 403
    no_scope = await api_key(platform, None, iso_host=host(GREENFIELD), scopes=["customers:read"])
    assert (await api.get("/api/v1/merchant-switch/policy", headers=bearer(no_scope))).status_code == 403


async def test_the_policy_takes_a_strict_boolean(world: World) -> None:
    iso_key = await api_key(world.platform, None, iso_host=host(GREENFIELD), scopes=["merchant_switch:write"])
    assert world.client_for is not None
    api = world.client_for(API)
    for body in ({"disclose_merchant_names": 0}, {"disclose_merchant_names": "true"}, {}, {"other": True}):
        answer = await api.put("/api/v1/merchant-switch/policy", json=body, headers=bearer(iso_key))
        assert answer.status_code == 400, body
