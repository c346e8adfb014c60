"""The webhook API: endpoints (secret shown once, rotation), deliveries, replay; scopes and tenants."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from security.conftest import GREENFIELD, NORTHWIND, PINNACLE, api_key, bearer
from standardwebhooks import Webhook

from portal.ids import has_prefix

API = "api.portal.localhost"
HOOK_URL = "https://hooks.example.invalid/portal"


async def owner_fetch(platform, sql: str, *args):
    connection = await asyncpg.connect(platform.settings.database_url)
    try:
        return [dict(row) for row in await connection.fetch(sql, *args)]
    finally:
        await connection.close()


async def make_endpoint(client, key: str, **fields) -> dict:
    body = {"url": HOOK_URL, **fields}
    response = await client.post("/api/v1/webhook-endpoints", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    return response.json()


async def make_customer(client, key: str) -> dict:
    email = f"wh-{uuid.uuid4().hex[:10]}@example.com"
    response = await client.post("/api/v1/customers", json={"email": email, "name": "Hook"}, headers=bearer(key))
    assert response.status_code == 201, response.text
    return response.json()


async def test_endpoint_crud_and_the_secret_is_shown_once(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    created = await make_endpoint(client, key, event_types=["customer.created"], description="CRM sync", enabled=True)
    assert has_prefix(created["id"], "we")
    assert created["object"] == "webhook_endpoint"
    assert created["url"] == HOOK_URL and created["event_types"] == ["customer.created"]
    assert created["description"] == "CRM sync" and created["enabled"] is True
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    signed = Webhook(secret).sign("msg_test", datetime.now(UTC), '{"ok":true}')
    headers = {"webhook-id": "msg_test", "webhook-timestamp": str(int(time.time())), "webhook-signature": signed}
    assert Webhook(secret).verify('{"ok":true}', headers) == {"ok": True}

    fetched = await client.get(f"/api/v1/webhook-endpoints/{created['id']}", headers=bearer(key))
    assert fetched.status_code == 200
    assert "secret" not in fetched.json() and secret not in fetched.text
    listed = await client.get("/api/v1/webhook-endpoints", headers=bearer(key))
    assert created["id"] in [item["id"] for item in listed.json()["data"]]
    assert secret not in listed.text and "whsec_" not in listed.text

    patched = await client.patch(
        f"/api/v1/webhook-endpoints/{created['id']}",
        json={"event_types": [], "description": "all events", "enabled": False},
        headers=bearer(key),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["event_types"] == [] and patched.json()["enabled"] is False
    assert patched.json()["description"] == "all events" and "secret" not in patched.json()
    empty = await client.patch(f"/api/v1/webhook-endpoints/{created['id']}", json={}, headers=bearer(key))
    assert empty.status_code == 400

    deleted = await client.delete(f"/api/v1/webhook-endpoints/{created['id']}", headers=bearer(key))
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/webhook-endpoints/{created['id']}", headers=bearer(key))
    assert gone.status_code == 404
    listed = await client.get("/api/v1/webhook-endpoints", headers=bearer(key))
    assert created["id"] not in [item["id"] for item in listed.json()["data"]]
    again = await client.delete(f"/api/v1/webhook-endpoints/{created['id']}", headers=bearer(key))
    assert again.status_code == 404
    stored = await owner_fetch(platform, "SELECT secret FROM portal_webhook_endpoint WHERE id = $1", created["id"])
    assert stored[0]["secret"] == ""


async def test_deleting_an_endpoint_cancels_its_pending_deliveries(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    endpoint = await make_endpoint(client, key, event_types=["customer.created"])
    other = await make_endpoint(client, key, event_types=["customer.created"])
    await make_customer(client, key)
    rows = await owner_fetch(
        platform,
        "SELECT endpoint_id, status FROM portal_webhook_delivery WHERE endpoint_id = ANY($1::text[])",
        [endpoint["id"], other["id"]],
    )
    assert sorted(row["endpoint_id"] for row in rows) == sorted([endpoint["id"], other["id"]])
    assert {row["status"] for row in rows} == {"pending"}
    assert (await client.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(key))).status_code == 204
    rows = await owner_fetch(
        platform,
        "SELECT endpoint_id, status, next_attempt_at FROM portal_webhook_delivery WHERE endpoint_id = ANY($1::text[])",
        [endpoint["id"], other["id"]],
    )
    states = {row["endpoint_id"]: row for row in rows}
    assert states[endpoint["id"]]["status"] == "cancelled" and states[endpoint["id"]]["next_attempt_at"] is None
    assert states[other["id"]]["status"] == "pending"
    # A deleted endpoint gets nothing new.
    await make_customer(client, key)
    count = await owner_fetch(
        platform, "SELECT count(*) AS n FROM portal_webhook_delivery WHERE endpoint_id = $1", endpoint["id"]
    )
    assert count[0]["n"] == 1


async def test_rotating_the_secret_keeps_the_old_one_for_the_overlap(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    created = await make_endpoint(client, key)
    before = datetime.now(UTC)
    rotated = await client.post(f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret", headers=bearer(key))
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != created["secret"]
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    overlap = timedelta(hours=platform.settings.webhook_secret_overlap_hours)
    assert before + overlap - timedelta(minutes=1) < expires < datetime.now(UTC) + overlap + timedelta(minutes=1)
    stored = await owner_fetch(
        platform, "SELECT secret, previous_secret FROM portal_webhook_endpoint WHERE id = $1", created["id"]
    )
    assert stored[0] == {"secret": new_secret, "previous_secret": created["secret"]}
    fetched = await client.get(f"/api/v1/webhook-endpoints/{created['id']}", headers=bearer(key))
    assert new_secret not in fetched.text and created["secret"] not in fetched.text
    assert fetched.json()["previous_secret_expires_at"] is not None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"url": HOOK_URL, "event_types": ["customer.created", "customer.exploded"]}, "customer.exploded"),
        ({"url": HOOK_URL, "event_types": ["no_such.thing"]}, "no_such.thing"),
        ({"url": "http://hooks.example.com/x"}, "https"),
        ({"url": "https://127.0.0.1/x"}, "private"),
        ({"url": "https://169.254.169.254/latest"}, "private"),
        ({"url": "https://localhost/x"}, "private"),
        ({"url": "ftp://hooks.example.com/x"}, "https"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "credentials"),
    ],
    ids=["unknown-type", "unknown-type-only", "http", "loopback", "link-local", "localhost", "ftp", "credentials"],
)
async def test_invalid_endpoints_are_422(platform, portal_client, body, fragment) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    response = await client.post("/api/v1/webhook-endpoints", json=body, headers=bearer(key))
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]


async def test_patch_validates_event_types_too(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    created = await make_endpoint(client, key)
    response = await client.patch(
        f"/api/v1/webhook-endpoints/{created['id']}", json={"event_types": ["customer.gone"]}, headers=bearer(key)
    )
    assert response.status_code == 422


async def test_webhook_scopes_are_enforced(platform, portal_client) -> None:
    writer = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    endpoint = await make_endpoint(client, writer)
    reader = await api_key(platform, GREENFIELD, scopes=["webhooks:read"])
    nothing = await api_key(platform, GREENFIELD, scopes=["customers:read"])
    assert (await client.get("/api/v1/webhook-endpoints", headers=bearer(reader))).status_code == 200
    assert (await client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(reader))).status_code == 200
    assert (await client.get("/api/v1/webhook-deliveries", headers=bearer(reader))).status_code == 200
    writes = [
        ("post", "/api/v1/webhook-endpoints", {"url": HOOK_URL}),
        ("patch", f"/api/v1/webhook-endpoints/{endpoint['id']}", {"enabled": False}),
        ("delete", f"/api/v1/webhook-endpoints/{endpoint['id']}", None),
        ("post", f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", None),
        ("post", "/api/v1/webhook-deliveries/msg_x/replay", None),
        ("post", "/api/v1/webhook-deliveries/replay", {"since": "2026-01-01T00:00:00Z"}),
    ]
    for method, path, body in writes:
        options = {"json": body} if body is not None else {}
        response = await client.request(method.upper(), path, headers=bearer(reader), **options)
        assert response.status_code == 403, (method, path)
        assert "webhooks:write" in response.json()["detail"]
    for path in (
        "/api/v1/webhook-endpoints",
        f"/api/v1/webhook-endpoints/{endpoint['id']}",
        "/api/v1/webhook-deliveries",
    ):
        response = await client.get(path, headers=bearer(nothing))
        assert response.status_code == 403 and "webhooks:read" in response.json()["detail"]


@pytest.mark.parametrize("other", [PINNACLE, NORTHWIND], ids=["same-iso", "other-iso"])
async def test_other_tenants_endpoints_and_deliveries_are_404(platform, portal_client, other) -> None:
    owner_key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    endpoint = await make_endpoint(client, owner_key, event_types=["customer.created"])
    await make_customer(client, owner_key)
    delivery = (
        await client.get(f"/api/v1/webhook-deliveries?endpoint={endpoint['id']}", headers=bearer(owner_key))
    ).json()["data"][0]
    foreign_key = await api_key(platform, other)
    calls = [
        ("GET", f"/api/v1/webhook-endpoints/{endpoint['id']}", None),
        ("PATCH", f"/api/v1/webhook-endpoints/{endpoint['id']}", {"enabled": False}),
        ("DELETE", f"/api/v1/webhook-endpoints/{endpoint['id']}", None),
        ("POST", f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", None),
        ("GET", f"/api/v1/webhook-deliveries/{delivery['id']}", None),
        ("POST", f"/api/v1/webhook-deliveries/{delivery['id']}/replay", None),
        ("POST", "/api/v1/webhook-deliveries/replay", {"since": "2020-01-01T00:00:00Z", "endpoint": endpoint["id"]}),
    ]
    for method, path, body in calls:
        options = {"json": body} if body is not None else {}
        response = await client.request(method, path, headers=bearer(foreign_key), **options)
        assert response.status_code == 404, (method, path, response.text)
    listed = await client.get(f"/api/v1/webhook-deliveries?endpoint={endpoint['id']}", headers=bearer(foreign_key))
    assert listed.status_code == 200 and listed.json()["data"] == []
    # Still there for its owner.
    assert (await client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(owner_key))).json()[
        "enabled"
    ]


async def test_iso_keys_name_the_merchant(platform, portal_client) -> None:
    iso_key = await api_key(platform, None, iso_host=GREENFIELD)
    client = portal_client(API)
    unnamed = await client.post("/api/v1/webhook-endpoints", json={"url": HOOK_URL}, headers=bearer(iso_key))
    assert unnamed.status_code == 404
    created = await client.post(
        "/api/v1/webhook-endpoints", json={"url": HOOK_URL, "merchant": "t-pinnacle"}, headers=bearer(iso_key)
    )
    assert created.status_code == 201
    pinnacle = await platform.tenants.resolve(PINNACLE)
    assert created.json()["merchant"] == pinnacle.merchant.id
    listed = await client.get("/api/v1/webhook-endpoints?merchant=t-pinnacle", headers=bearer(iso_key))
    assert created.json()["id"] in [item["id"] for item in listed.json()["data"]]
    # Lookups by id need no merchant; another ISO's merchant is 404.
    assert (
        await client.get(f"/api/v1/webhook-endpoints/{created.json()['id']}", headers=bearer(iso_key))
    ).status_code == 200
    foreign = await client.get("/api/v1/webhook-endpoints?merchant=t-northwind", headers=bearer(iso_key))
    assert foreign.status_code == 404


async def test_deliveries_are_listed_paginated_and_retrieved_with_attempts(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    endpoint = await make_endpoint(client, key, event_types=["customer.created"])
    customers = [await make_customer(client, key) for _ in range(5)]
    path = f"/api/v1/webhook-deliveries?endpoint={endpoint['id']}&limit=2"
    seen: list[dict] = []
    page = (await client.get(path, headers=bearer(key))).json()
    pages = 1
    seen.extend(page["data"])
    while page["has_more"]:
        page = (await client.get(f"{path}&starting_after={page['data'][-1]['id']}", headers=bearer(key))).json()
        seen.extend(page["data"])
        pages += 1
    assert pages == 3 and len(seen) == 5 and len({item["id"] for item in seen}) == 5
    assert [item["created"] for item in seen] == sorted((item["created"] for item in seen), reverse=True)
    assert all(item["status"] == "pending" and item["event_type"] == "customer.created" for item in seen)
    assert all(has_prefix(item["id"], "msg") and item["endpoint"] == endpoint["id"] for item in seen)

    too_many = await client.get("/api/v1/webhook-deliveries?limit=101", headers=bearer(key))
    assert too_many.status_code == 400
    bad_status = await client.get("/api/v1/webhook-deliveries?status=exploded", headers=bearer(key))
    assert bad_status.status_code == 400
    by_type = await client.get(
        f"/api/v1/webhook-deliveries?endpoint={endpoint['id']}&event_type=customer.updated", headers=bearer(key)
    )
    assert by_type.json()["data"] == []
    by_status = await client.get(
        f"/api/v1/webhook-deliveries?endpoint={endpoint['id']}&status=pending&limit=100", headers=bearer(key)
    )
    assert len(by_status.json()["data"]) == 5

    newest = seen[0]
    await owner_fetch(
        platform,
        "INSERT INTO portal_webhook_attempt (id, iso_id, delivery_id, status_code, latency_ms, response_excerpt) "
        "SELECT 'att_' || md5(random()::text), iso_id, id, 500, 42, 'oops' FROM portal_webhook_delivery WHERE id = $1",
        newest["id"],
    )
    detail = (await client.get(f"/api/v1/webhook-deliveries/{newest['id']}", headers=bearer(key))).json()
    assert detail["attempt_log"][0]["status_code"] == 500 and detail["attempt_log"][0]["latency_ms"] == 42
    assert '"type":"customer.created"' in detail["payload"]
    assert customers[-1]["id"] in detail["payload"]


async def test_replay_one_and_replay_since(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    endpoint = await make_endpoint(client, key, event_types=["customer.created"])
    since = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(3):
        await make_customer(client, key)
    listed = (await client.get(f"/api/v1/webhook-deliveries?endpoint={endpoint['id']}", headers=bearer(key))).json()
    original = listed["data"][0]
    await owner_fetch(platform, "UPDATE portal_webhook_delivery SET status = 'failed' WHERE id = $1", original["id"])

    replayed = await client.post(f"/api/v1/webhook-deliveries/{original['id']}/replay", headers=bearer(key))
    assert replayed.status_code == 201, replayed.text
    copy = replayed.json()
    assert has_prefix(copy["id"], "msg") and copy["id"] != original["id"]
    assert copy["status"] == "pending" and copy["event"] == original["event"] and copy["endpoint"] == endpoint["id"]
    payloads = await owner_fetch(
        platform,
        "SELECT id, payload FROM portal_webhook_delivery WHERE id = ANY($1::text[])",
        [original["id"], copy["id"]],
    )
    assert len({row["payload"] for row in payloads}) == 1

    bulk = await client.post(
        "/api/v1/webhook-deliveries/replay",
        json={"since": since.isoformat(), "endpoint": endpoint["id"]},
        headers=bearer(key),
    )
    assert bulk.status_code == 201, bulk.text
    assert bulk.json()["count"] == 3  # one per event, not one per earlier copy
    assert all(has_prefix(item, "msg") for item in bulk.json()["ids"])
    total = await owner_fetch(
        platform, "SELECT count(*) AS n FROM portal_webhook_delivery WHERE endpoint_id = $1", endpoint["id"]
    )
    assert total[0]["n"] == 3 + 1 + 3
    future = await client.post(
        "/api/v1/webhook-deliveries/replay",
        json={"since": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "endpoint": endpoint["id"]},
        headers=bearer(key),
    )
    assert future.json()["count"] == 0

    await client.patch(f"/api/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}, headers=bearer(key))
    disabled = await client.post(f"/api/v1/webhook-deliveries/{original['id']}/replay", headers=bearer(key))
    assert disabled.status_code == 409
    naive = await client.post(
        "/api/v1/webhook-deliveries/replay", json={"since": "2026-01-01T00:00:00"}, headers=bearer(key)
    )
    assert naive.status_code == 400


async def test_patch_customer_emits_before_and_after(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    endpoint = await make_endpoint(client, key, event_types=["customer.updated"])
    customer = await make_customer(client, key)
    response = await client.patch(
        f"/api/v1/customers/{customer['id']}",
        json={"name": "Renamed", "external_ref": "crm-" + customer["id"][-6:]},
        headers={**bearer(key), "x-request-id": "trace-123_abc", "user-agent": "wh-test/1.0"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    events = await owner_fetch(
        platform,
        "SELECT * FROM portal_audit_event WHERE customer_id = $1 ORDER BY seq",
        customer["id"],
    )
    assert [event["type"] for event in events] == ["customer.created", "customer.updated"]
    import json

    updated = events[1]
    assert json.loads(updated["before"]) == {"name": "Hook", "external_ref": None}
    assert json.loads(updated["after"]) == {"name": "Renamed", "external_ref": "crm-" + customer["id"][-6:]}
    assert updated["request_id"] == "trace-123_abc" and updated["user_agent"] == "wh-test/1.0"
    assert updated["actor_type"] == "merchant_api_key" and updated["actor_id"].startswith("key_")
    delivery = await owner_fetch(
        platform, "SELECT payload FROM portal_webhook_delivery WHERE endpoint_id = $1", endpoint["id"]
    )
    assert len(delivery) == 1 and '"name":"Renamed"' in delivery[0]["payload"]
    assert '"request_id":"trace-123_abc"' in delivery[0]["payload"]
