"""The audit API: newest-first pages by seq, filters, CSV export; scopes and tenants."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from security.conftest import GREENFIELD, NORTHWIND, PINNACLE, api_key, bearer

API = "api.portal.localhost"


async def make_customer(client, key: str, **headers: str) -> dict:
    email = f"au-{uuid.uuid4().hex[:10]}@example.com"
    response = await client.post(
        "/api/v1/customers", json={"email": email, "name": "Audit"}, headers={**bearer(key), **headers}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_creating_and_updating_a_customer_is_audited(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    customer = await make_customer(client, key, **{"x-request-id": "req-from-client", "user-agent": "audit-test/2"})
    patched = await client.patch(
        f"/api/v1/customers/{customer['id']}", json={"email": "Changed-" + customer["email"]}, headers=bearer(key)
    )
    assert patched.status_code == 200, patched.text
    page = await client.get(f"/api/v1/audit-events?customer={customer['id']}", headers=bearer(key))
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["object"] == "list" and body["has_more"] is False
    updated, created = body["data"]
    assert created["type"] == "customer.created" and updated["type"] == "customer.updated"
    assert updated["seq"] > created["seq"]
    assert created["actor"]["type"] == "merchant_api_key" and created["actor"]["id"].startswith("key_")
    assert created["target"] == {"type": "customer", "id": customer["id"]}
    assert created["customer"] == customer["id"]
    assert created["data"]["email"] == customer["email"] and created["before"] is None
    assert created["request_id"] == "req-from-client" and created["user_agent"] == "audit-test/2"
    assert created["ip"]
    assert updated["request_id"].startswith("req_") and len(updated["request_id"]) == 30
    assert updated["before"] == {"email": customer["email"]}
    assert updated["after"] == {"email": "Changed-" + customer["email"]}
    assert updated["prev_hash"] != updated["hash"] and len(updated["hash"]) == 64
    assert created["object"] == "audit_event"


async def test_an_invalid_request_id_is_replaced(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    for bad in ("has space", "x" * 65, "semi;colon"):
        customer = await make_customer(client, key, **{"x-request-id": bad})
        event = (await client.get(f"/api/v1/audit-events?customer={customer['id']}", headers=bearer(key))).json()
        assert event["data"][0]["request_id"].startswith("req_")


async def test_patch_customer_validation(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    customer = await make_customer(client, key)
    empty = await client.patch(f"/api/v1/customers/{customer['id']}", json={}, headers=bearer(key))
    assert empty.status_code == 400
    unknown = await client.patch(f"/api/v1/customers/{customer['id']}", json={"colour": "red"}, headers=bearer(key))
    assert unknown.status_code == 400
    reader = await api_key(platform, GREENFIELD, scopes=["customers:read"])
    forbidden = await client.patch(f"/api/v1/customers/{customer['id']}", json={"name": "x"}, headers=bearer(reader))
    assert forbidden.status_code == 403
    other = await make_customer(client, key)
    clash = await client.patch(
        f"/api/v1/customers/{customer['id']}", json={"email": other["email"].upper()}, headers=bearer(key)
    )
    assert clash.status_code == 409
    same = await client.patch(f"/api/v1/customers/{customer['id']}", json={"name": "Audit"}, headers=bearer(key))
    assert same.status_code == 200
    events = (await client.get(f"/api/v1/audit-events?customer={customer['id']}", headers=bearer(key))).json()
    assert [event["type"] for event in events["data"]] == ["customer.created"]  # no change, no event, no clash
    foreign_key = await api_key(platform, PINNACLE)
    foreign = await client.patch(f"/api/v1/customers/{customer['id']}", json={"name": "x"}, headers=bearer(foreign_key))
    assert foreign.status_code == 404


async def test_pages_newest_first_by_seq_and_the_chain_links(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    since = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(5):
        await make_customer(client, key)
    base = f"/api/v1/audit-events?action=customer.created&since={since.isoformat().replace('+00:00', 'Z')}&limit=2"
    seen: list[dict] = []
    page = (await client.get(base, headers=bearer(key))).json()
    seen.extend(page["data"])
    while page["has_more"]:
        page = (await client.get(f"{base}&starting_after={page['data'][-1]['seq']}", headers=bearer(key))).json()
        seen.extend(page["data"])
    seqs = [event["seq"] for event in seen]
    assert len(seqs) >= 5 and seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    everything = (await client.get("/api/v1/audit-events?limit=100", headers=bearer(key))).json()["data"]
    by_seq = {event["seq"]: event for event in everything}
    for event in everything:
        if event["seq"] - 1 in by_seq:
            assert event["prev_hash"] == by_seq[event["seq"] - 1]["hash"]
    newest = everything[0]
    tenant = await platform.tenants.resolve(GREENFIELD)
    line = {  # the canonical line of docs/events.md, from the API's fields
        "id": newest["id"], "iso_id": tenant.merchant.iso_id, "merchant_id": tenant.merchant.id,
        "seq": newest["seq"], "type": newest["type"],
        "actor_type": newest["actor"]["type"], "actor_id": newest["actor"]["id"],
        "target_type": newest["target"]["type"], "target_id": newest["target"]["id"],
        "customer_id": newest["customer"], "data": newest["data"], "before": newest["before"],
        "after": newest["after"], "ip": newest["ip"], "user_agent": newest["user_agent"],
        "request_id": newest["request_id"],
        "occurred_at": datetime.fromisoformat(newest["occurred_at"]).astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%f+00:00"
        ),
    }  # fmt: skip
    text = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(f"{newest['prev_hash']}\n{text}".encode()).hexdigest() == newest["hash"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert (await client.get(f"/api/v1/audit-events?since={later}", headers=bearer(key))).json()["data"] == []
    until = (
        await client.get(
            f"/api/v1/audit-events?until={since.isoformat().replace('+00:00', 'Z')}&limit=100", headers=bearer(key)
        )
    ).json()
    assert all(datetime.fromisoformat(event["occurred_at"]) < since for event in until["data"])
    assert (await client.get("/api/v1/audit-events?limit=101", headers=bearer(key))).status_code == 400
    assert (await client.get("/api/v1/audit-events?limit=0", headers=bearer(key))).status_code == 400


async def test_csv_export_streams_every_matching_record(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    customer = await make_customer(client, key, **{"user-agent": '=HYPERLINK("http://evil")'})
    await client.patch(f"/api/v1/customers/{customer['id']}", json={"name": 'Renamed, "quoted"'}, headers=bearer(key))
    response = await client.get(f"/api/v1/audit-events.csv?customer={customer['id']}", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["type"] for row in rows] == ["customer.created", "customer.updated"]  # oldest first
    assert list(rows[0]) == [
        "id", "seq", "type", "occurred_at", "actor_type", "actor_id", "target_type", "target_id", "customer",
        "data", "before", "after", "ip", "user_agent", "request_id", "prev_hash", "hash",
    ]  # fmt: skip
    assert rows[0]["user_agent"] == '\'=HYPERLINK("http://evil")'
    assert int(rows[1]["seq"]) == int(rows[0]["seq"]) + 1 and rows[1]["prev_hash"] == rows[0]["hash"]
    assert json.loads(rows[1]["after"]) == {"name": 'Renamed, "quoted"'}
    assert json.loads(rows[1]["before"]) == {"name": "Audit"} and rows[0]["before"] == ""
    whole = await client.get("/api/v1/audit-events.csv", headers=bearer(key))
    all_rows = list(csv.DictReader(io.StringIO(whole.text)))
    seqs = [int(row["seq"]) for row in all_rows]
    assert seqs == list(range(1, len(seqs) + 1))  # the whole chain, gapless, oldest first
    nothing = await client.get("/api/v1/audit-events.csv?action=no.such", headers=bearer(key))
    assert nothing.text.strip().count("\n") == 0 and nothing.text.startswith("id,seq,type")


async def test_audit_scope_is_required(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD, scopes=["customers:read", "customers:write", "webhooks:read"])
    client = portal_client(API)
    for path in ("/api/v1/audit-events", "/api/v1/audit-events.csv"):
        response = await client.get(path, headers=bearer(key))
        assert response.status_code == 403 and "audit:read" in response.json()["detail"]


@pytest.mark.parametrize("other", [PINNACLE, NORTHWIND], ids=["same-iso", "other-iso"])
async def test_another_tenants_audit_is_invisible(platform, portal_client, other) -> None:
    owner_key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    customer = await make_customer(client, owner_key)
    foreign_key = await api_key(platform, other)
    listed = await client.get(f"/api/v1/audit-events?customer={customer['id']}", headers=bearer(foreign_key))
    assert listed.status_code == 200 and listed.json()["data"] == []
    exported = await client.get(f"/api/v1/audit-events.csv?customer={customer['id']}", headers=bearer(foreign_key))
    assert exported.status_code == 200 and customer["id"] not in exported.text
    assert len(exported.text.strip().splitlines()) == 1  # the header row only
    named = await client.get("/api/v1/audit-events?merchant=t-greenfield", headers=bearer(foreign_key))
    assert named.status_code == 404


async def test_iso_keys_read_a_named_merchants_audit(platform, portal_client) -> None:
    iso_key = await api_key(platform, None, iso_host=GREENFIELD)
    merchant_key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    customer = await make_customer(client, merchant_key)
    assert (await client.get("/api/v1/audit-events", headers=bearer(iso_key))).status_code == 404
    named = await client.get(
        f"/api/v1/audit-events?merchant=t-greenfield&customer={customer['id']}", headers=bearer(iso_key)
    )
    assert [event["customer"] for event in named.json()["data"]] == [customer["id"]]
    created = await client.post(
        "/api/v1/customers",
        json={"email": f"iso-{uuid.uuid4().hex[:8]}@example.com", "merchant": "t-greenfield"},
        headers=bearer(iso_key),
    )
    events = await client.get(
        f"/api/v1/audit-events?merchant=t-greenfield&customer={created.json()['id']}", headers=bearer(iso_key)
    )
    assert events.json()["data"][0]["actor"]["type"] == "iso_api_key"
