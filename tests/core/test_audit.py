"""The audit chain: gapless and linked, append-only for the app, tamper-evident, atomic with the write."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import Actor, emit
from portal.events.chain import GENESIS, chain_hash
from portal.events.core_types import CustomerPayload
from portal.events.verify import verify_chain
from portal.ids import new_id
from portal.platform import Platform
from portal.tenancy.models import Tenant
from support.audit import ACTOR, chain_rows, emit_one, new_merchant
from support.cli import cli_environment, portal


@pytest_asyncio.fixture(loop_scope="session")
async def fresh(shared_tenants: Platform, tmp_path: Path) -> AsyncIterator[Tenant]:
    """A merchant of its own (a new ISO), so tampering with its chain affects no other test."""
    yield await new_merchant(shared_tenants, tmp_path)


async def verify(tenant: Tenant):
    async with tenant_transaction(tenant.merchant.iso_id):
        return await verify_chain(tenant.merchant.id)


async def owner(platform: Platform) -> asyncpg.Connection:
    return await asyncpg.connect(platform.settings.database_url)


@pytest.fixture
def cli_env(shared_tenants: Platform, tmp_path: Path) -> dict[str, str]:
    """Environment for a ``portal`` process: the test database and the example plugin installed."""
    return cli_environment(str(shared_tenants.settings.database_url), tmp_path / "site")


async def test_the_chain_is_gapless_and_linked_over_several_emits(fresh: Tenant) -> None:
    ids = [await emit_one(fresh, f"Name {n}") for n in range(7)]
    rows = await chain_rows(fresh)
    assert [row["id"] for row in rows] == ids
    assert [row["seq"] for row in rows] == list(range(1, 8))
    assert rows[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["hash"]
    result = await verify(fresh)
    assert result.ok and result.records == 7 and result.head_seq == 7 and result.head_hash == rows[-1]["hash"]


async def test_an_empty_chain_verifies(fresh: Tenant) -> None:
    result = await verify(fresh)
    assert result.ok and result.records == 0 and result.head_seq == 0 and result.head_hash == GENESIS


async def test_verify_needs_a_tenant_transaction(fresh: Tenant) -> None:
    from portal.db.engine import TenantScopeError

    with pytest.raises(TenantScopeError):
        await verify_chain(fresh.merchant.id)


async def test_tampering_as_superuser_is_detected_and_named(
    shared_tenants: Platform, fresh: Tenant, cli_env: dict[str, str]
) -> None:
    ids = [await emit_one(fresh) for _ in range(4)]
    connection = await owner(shared_tenants)
    try:
        original = await connection.fetchval("SELECT data::text FROM portal_audit_event WHERE id = $1", ids[2])
        await connection.execute(
            "UPDATE portal_audit_event SET data = jsonb_set(data, '{name}', '\"Mallory\"') WHERE id = $1", ids[2]
        )
        try:
            result = await verify(fresh)
            assert not result.ok and result.broken is not None
            assert (result.broken.seq, result.broken.id) == (3, ids[2])
            assert "changed" in result.broken.problem
            assert result.records == 3

            one = portal(cli_env, "audit", "verify", "--merchant", fresh.merchant.slug)
            assert one.returncode == 1, one.stdout + one.stderr
            assert f"{fresh.merchant.slug}: BROKEN at seq 3 ({ids[2]})" in one.stdout
            assert ids[2] in one.stderr and "Traceback" not in one.stderr
            every = portal(cli_env, "audit", "verify")
            assert every.returncode == 1
            assert f"{fresh.merchant.slug}: BROKEN at seq 3 ({ids[2]})" in every.stdout
            assert "t-greenfield: ok, " in every.stdout and "t-northwind: ok, " in every.stdout
            assert ids[2] in every.stderr
        finally:
            await connection.execute("UPDATE portal_audit_event SET data = $2::jsonb WHERE id = $1", ids[2], original)
        assert (await verify(fresh)).ok
        fixed = portal(cli_env, "audit", "verify", "--merchant", fresh.merchant.slug)
        assert fixed.returncode == 0, fixed.stderr
        assert fixed.stdout.startswith(f"{fresh.merchant.slug}: ok, 4 record(s), head seq 4 ")
    finally:
        await connection.close()


async def test_a_deleted_or_relinked_record_is_detected(shared_tenants: Platform, fresh: Tenant) -> None:
    ids = [await emit_one(fresh) for _ in range(3)]
    connection = await owner(shared_tenants)
    try:
        row = dict(await connection.fetchrow("SELECT * FROM portal_audit_event WHERE id = $1", ids[1]))
        await connection.execute("DELETE FROM portal_audit_event WHERE id = $1", ids[1])
        result = await verify(fresh)
        assert result.broken is not None and (result.broken.seq, result.broken.id) == (3, ids[2])
        assert "missing" in result.broken.problem
        columns = ", ".join(row)
        placeholders = ", ".join(f"${n}" for n in range(1, len(row) + 1))
        await connection.execute(f"INSERT INTO portal_audit_event ({columns}) VALUES ({placeholders})", *row.values())
        assert (await verify(fresh)).ok
        await connection.execute("UPDATE portal_audit_event SET prev_hash = $2 WHERE id = $1", ids[2], "f" * 64)
        result = await verify(fresh)
        assert result.broken is not None and result.broken.id == ids[2] and "prev_hash" in result.broken.problem
        await connection.execute("UPDATE portal_audit_event SET prev_hash = $2 WHERE id = $1", ids[2], row["hash"])
        assert (await verify(fresh)).ok
    finally:
        await connection.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE portal_audit_event SET data = '{}'::jsonb WHERE merchant_id = $1",
        "DELETE FROM portal_audit_event WHERE merchant_id = $1",
    ],
    ids=["update", "delete"],
)
async def test_the_application_role_cannot_change_audit_rows(fresh: Tenant, statement: str) -> None:
    await emit_one(fresh)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(fresh.merchant.iso_id):
            await fetch(statement, fresh.merchant.id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(fresh.merchant.iso_id):
            await fetch("TRUNCATE portal_audit_event")
    assert (await verify(fresh)).ok


async def test_a_rolled_back_write_leaves_no_audit_and_no_delivery(fresh: Tenant) -> None:
    merchant = fresh.merchant
    async with tenant_transaction(merchant.iso_id):
        await fetch(
            "INSERT INTO portal_webhook_endpoint (id, iso_id, merchant_id, url, event_types, secret) "
            "VALUES ($1, $2, $3, 'https://hooks.example.invalid/', '[]'::jsonb, 'whsec_dGVzdA==')",
            new_id("we"),
            merchant.iso_id,
            merchant.id,
        )
    customer = new_id("cus")
    emitted_id: str | None = None

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with tenant_transaction(merchant.iso_id):
            await fetch(
                "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
                "VALUES ($1, $2, $3, $4, $4, 'Rolled Back')",
                customer,
                merchant.iso_id,
                merchant.id,
                f"{customer}@example.com",
            )
            payload = CustomerPayload(
                id=customer,
                merchant=merchant.id,
                email=f"{customer}@example.com",
                name="Rolled Back",
                external_ref=None,
            )
            emitted = await emit(merchant, "customer.created", payload, actor=ACTOR, customer_id=customer)
            emitted_id = emitted.id
            assert emitted.deliveries == 1
            assert await fetch("SELECT id FROM portal_webhook_delivery WHERE event_id = $1", emitted.id)
            raise Boom
    assert emitted_id is not None
    async with tenant_transaction(merchant.iso_id):
        assert (
            await fetch("SELECT id FROM portal_audit_event WHERE id = $1 OR customer_id = $2", emitted_id, customer)
            == []
        )
        assert await fetch("SELECT id FROM portal_webhook_delivery WHERE event_id = $1", emitted_id) == []
        assert await fetch("SELECT id FROM portal_customer WHERE id = $1", customer) == []
    # The next emit takes seq 1: the rolled-back record left no gap.
    await emit_one(fresh)
    rows = await chain_rows(fresh)
    assert [row["seq"] for row in rows] == [1]


async def test_concurrent_emits_keep_the_chain_gapless(fresh: Tenant) -> None:
    ids = await asyncio.gather(*(emit_one(fresh, f"Concurrent {n}") for n in range(12)))
    rows = await chain_rows(fresh)
    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert [row["seq"] for row in rows] == list(range(1, 13))
    result = await verify(fresh)
    assert result.ok and result.records == 12


async def test_records_carry_the_actor_and_a_parsed_payload(fresh: Tenant) -> None:
    event_id = await emit_one(fresh, "Grace")
    async with tenant_transaction(fresh.merchant.iso_id):
        rows = await fetch("SELECT * FROM portal_audit_event WHERE id = $1", event_id)
    row = rows[0]
    assert (row["actor_type"], row["actor_id"], row["ip"], row["user_agent"], row["request_id"]) == (
        "operator", "op_test", "192.0.2.1", "pytest", "req_test",
    )  # fmt: skip
    assert json.loads(row["data"])["name"] == "Grace"


# -- the documented hash format ---------------------------------------------------------------------

DOCUMENTED_FIELDS = (
    "id", "iso_id", "merchant_id", "seq", "type", "actor_type", "actor_id", "target_type", "target_id",
    "customer_id", "data", "before", "after", "ip", "user_agent", "request_id", "occurred_at",
)  # fmt: skip
"""The members of the canonical line, as docs/events.md lists them (written out here on purpose)."""


def documented_hash(prev_hash: str, record: dict[str, Any]) -> str:
    """``hash`` as docs/events.md ("How hash is computed") defines it, computed here, not by the product."""
    line: dict[str, Any] = {}
    for name in DOCUMENTED_FIELDS:
        value = record[name]
        if name in ("data", "before", "after") and isinstance(value, str):
            value = json.loads(value)  # a JSON column read without a codec
        if name == "occurred_at":
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        line[name] = value
    text = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + text.encode("utf-8")).hexdigest()


DOCS_PREV_HASH = "50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c"
DOCS_RECORD: dict[str, Any] = {
    "id": "evt_01m892xm15f6c38yw2ecz3y452",
    "iso_id": "iso_01m891hpbz4d3qf0aw8k2r7ytn",
    "merchant_id": "mer_01m892xkr6803c93hprjkgktd1",
    "seq": 2,
    "type": "customer.updated",
    "actor_type": "merchant_api_key",
    "actor_id": "key_01m892b7xq5e0h3r9tk6dwp2vc",
    "target_type": "customer",
    "target_id": "cus_01m892xm0pp36708yz8mbgdh1w",
    "customer_id": "cus_01m892xm0pp36708yz8mbgdh1w",
    "data": {
        "id": "cus_01m892xm0pp36708yz8mbgdh1w",
        "merchant": "mer_01m892xkr6803c93hprjkgktd1",
        "email": "zoe@example.com",
        "name": "Zoë Lovelace",
        "external_ref": None,
    },
    "before": {"name": "Zoe Lovelace"},
    "after": {"name": "Zoë Lovelace"},
    "ip": "203.0.113.9",
    "user_agent": "crm-sync/2",
    "request_id": None,
    "occurred_at": datetime(2026, 11, 25, 10, 9, 47, 123456, tzinfo=UTC),
}
DOCS_LINE = (
    '{"actor_id":"key_01m892b7xq5e0h3r9tk6dwp2vc","actor_type":"merchant_api_key","after":{"name":"Zoë Lovelace"},'
    '"before":{"name":"Zoe Lovelace"},"customer_id":"cus_01m892xm0pp36708yz8mbgdh1w","data":{"email":"zoe@example.com",'
    '"external_ref":null,"id":"cus_01m892xm0pp36708yz8mbgdh1w","merchant":"mer_01m892xkr6803c93hprjkgktd1",'
    '"name":"Zoë Lovelace"},"id":"evt_01m892xm15f6c38yw2ecz3y452","ip":"203.0.113.9",'
    '"iso_id":"iso_01m891hpbz4d3qf0aw8k2r7ytn","merchant_id":"mer_01m892xkr6803c93hprjkgktd1",'
    '"occurred_at":"2026-11-25T10:09:47.123456+00:00","request_id":null,"seq":2,'
    '"target_id":"cus_01m892xm0pp36708yz8mbgdh1w","target_type":"customer","type":"customer.updated",'
    '"user_agent":"crm-sync/2"}'
)
DOCS_HASH = "82167e2ee377848b5f393b1e82e3495b32540a41a8f6a9ee12c6c075c40f205a"
EVENTS_MD = Path(__file__).parents[2] / "docs" / "events.md"


def test_the_documented_example_hashes_as_documented() -> None:
    expected = hashlib.sha256(DOCS_PREV_HASH.encode() + b"\n" + DOCS_LINE.encode("utf-8")).hexdigest()
    assert expected == DOCS_HASH
    assert documented_hash(DOCS_PREV_HASH, DOCS_RECORD) == DOCS_HASH
    assert chain_hash(DOCS_PREV_HASH, DOCS_RECORD) == DOCS_HASH  # the product agrees with the documentation
    docs = EVENTS_MD.read_text(encoding="utf-8")
    assert DOCS_LINE in docs and DOCS_HASH in docs and DOCS_PREV_HASH in docs
    assert all(f"`{name}`" in docs for name in DOCUMENTED_FIELDS)


async def emit_full(tenant: Tenant, name: str) -> str:
    """An update with every chained field set (non-ASCII included)."""
    merchant = tenant.merchant
    customer = new_id("cus")
    payload = CustomerPayload(
        id=customer, merchant=merchant.id, email=f"{customer}@example.com", name=name, external_ref="crm-1"
    )
    async with tenant_transaction(merchant.iso_id):
        emitted = await emit(
            merchant,
            "customer.updated",
            payload,
            actor=ACTOR,
            target=("customer", customer),
            customer_id=customer,
            before={"name": "Zoe", "email": f"old-{customer}@example.com"},
            after={"name": name, "email": f"{customer}@example.com"},
        )
    return emitted.id


async def owner_rows(platform: Platform, tenant: Tenant) -> list[dict[str, Any]]:
    connection = await owner(platform)
    try:
        rows = await connection.fetch(
            "SELECT * FROM portal_audit_event WHERE merchant_id = $1 ORDER BY seq", tenant.merchant.id
        )
    finally:
        await connection.close()
    return [dict(row) for row in rows]


async def test_stored_hashes_follow_the_documented_format(shared_tenants: Platform, fresh: Tenant) -> None:
    await emit_full(fresh, 'Zoë «Ω» "quoted" \\ tab\t')
    async with tenant_transaction(fresh.merchant.iso_id):
        await emit(fresh.merchant, "customer.created", CustomerPayload(
            id=new_id("cus"), merchant=fresh.merchant.id, email="x@example.com", name="X", external_ref=None,
        ), actor=Actor(type="system"))  # fmt: skip
    rows = await owner_rows(shared_tenants, fresh)
    assert [row["seq"] for row in rows] == [1, 2]
    assert rows[1]["actor_id"] is None and rows[1]["target_type"] is None and rows[1]["before"] is None
    prev_hash = "0" * 64
    for row in rows:
        assert row["prev_hash"] == prev_hash
        assert row["hash"] == documented_hash(prev_hash, row), row
        prev_hash = row["hash"]


async def test_a_record_hashed_as_documented_verifies(shared_tenants: Platform, fresh: Tenant) -> None:
    await emit_full(fresh, "First")
    await emit_one(fresh)
    last = (await owner_rows(shared_tenants, fresh))[-1]
    record = {
        **DOCS_RECORD,
        "id": new_id("evt"),
        "iso_id": fresh.merchant.iso_id,
        "merchant_id": fresh.merchant.id,
        "seq": 3,
        "data": {"z": [1, {"b": None, "a": "ü"}], "a": {"y": True, "x": -7}},
        "occurred_at": datetime(2026, 11, 25, 23, 59, 59, 5, tzinfo=timezone(timedelta(hours=-5))),
    }
    digest = documented_hash(last["hash"], record)
    connection = await owner(shared_tenants)
    try:
        await connection.execute(
            "INSERT INTO portal_audit_event (id, iso_id, merchant_id, seq, prev_hash, hash, type, actor_type,"
            " actor_id, target_type, target_id, customer_id, data, before, after, ip, user_agent, request_id,"
            " occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb,"
            " $15::jsonb, $16, $17, $18, $19)",
            *(record[name] for name in ("id", "iso_id", "merchant_id", "seq")),
            last["hash"],
            digest,
            *(record[name] for name in ("type", "actor_type", "actor_id", "target_type", "target_id", "customer_id")),
            *(json.dumps(record[name]) for name in ("data", "before", "after")),
            *(record[name] for name in ("ip", "user_agent", "request_id", "occurred_at")),
        )
    finally:
        await connection.close()
    result = await verify(fresh)
    assert result.broken is None, result.broken
    assert (result.records, result.head_seq, result.head_hash) == (3, 3, digest)


TAMPERING = {
    "id": "id = id || 'x'",
    "iso_id": "iso_id = $2",
    "merchant_id": "merchant_id = $2",
    "seq": "seq = seq + 1000",
    "type": "type = 'customer.created'",
    "actor_type": "actor_type = 'system'",
    "actor_id": "actor_id = 'op_mallory'",
    "target_type": "target_type = 'merchant'",
    "target_id": "target_id = 'cus_mallory'",
    "customer_id": "customer_id = 'cus_mallory'",
    "data": "data = jsonb_set(data, '{name}', '\"Mallory\"')",
    "before": "before = jsonb_set(before, '{name}', '\"Mallory\"')",
    "after": "after = jsonb_set(after, '{name}', '\"Mallory\"')",
    "ip": "ip = '198.51.100.66'",
    "user_agent": "user_agent = 'mallory/1'",
    "request_id": "request_id = 'req_mallory'",
    "occurred_at": "occurred_at = occurred_at + interval '1 microsecond'",
}
"""An owner's change to each chained field: ``$1`` is the record's id, ``$2`` another ISO's or merchant's."""


def test_every_documented_field_has_a_tampering_case() -> None:
    assert tuple(TAMPERING) == DOCUMENTED_FIELDS


@pytest.mark.parametrize("field", DOCUMENTED_FIELDS)
async def test_changing_any_chained_field_breaks_the_chain_at_that_record(
    shared_tenants: Platform, fresh: Tenant, tmp_path: Path, field: str
) -> None:
    ids = [await emit_full(fresh, f"Zoë {n}") for n in range(3)]
    moved = field in ("iso_id", "merchant_id")  # the record leaves the merchant's chain: change the first one
    victim = ids[0] if moved else ids[2] if field == "seq" else ids[1]  # no record may follow a changed seq
    other = await new_merchant(shared_tenants, tmp_path) if moved else None
    destination = (other.merchant.iso_id if field == "iso_id" else other.merchant.id) if other else None
    connection = await owner(shared_tenants)
    try:
        original = dict(await connection.fetchrow("SELECT * FROM portal_audit_event WHERE id = $1", victim))
        changed = await connection.fetchrow(
            f"UPDATE portal_audit_event SET {TAMPERING[field]} WHERE id = $1 RETURNING *",
            victim,
            *([destination] if moved else []),
        )
        assert changed is not None and changed[field] != original[field]
        try:
            async with tenant_transaction(changed["iso_id"]):  # the chain the record is in now
                result = await verify_chain(changed["merchant_id"])
            assert result.broken is not None, f"changing {field} went unnoticed"
            assert (result.broken.seq, result.broken.id) == (changed["seq"], changed["id"])
            assert result.records == (1 if moved else 3 if field == "seq" else 2)
            if field == "seq":
                assert "missing" in result.broken.problem
            else:
                assert result.broken.problem == "hash does not match the record's contents (the record was changed)"
            if moved:  # and the merchant's own chain misses it
                home = await verify(fresh)
                assert home.broken is not None and (home.broken.seq, home.broken.id) == (2, ids[1])
        finally:
            value = original[field]
            await connection.execute(f"UPDATE portal_audit_event SET {field} = $2 WHERE id = $1", changed["id"], value)
    finally:
        await connection.close()
    restored = await verify(fresh)
    assert restored.ok and restored.records == 3, restored
