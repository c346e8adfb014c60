"""The audit chain: gapless and linked, append-only for the app, tamper-evident, atomic with the write."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.events.bus import Actor, emit
from portal.events.chain import GENESIS
from portal.events.core_types import CustomerPayload
from portal.events.verify import verify_chain
from portal.ids import new_id
from portal.platform import Platform
from portal.tenancy.models import Tenant
from portal.testing import apply_tenants
from support.cli import cli_environment, portal

ACTOR = Actor(type="operator", id="op_test", ip="192.0.2.1", user_agent="pytest", request_id="req_test")


@pytest_asyncio.fixture(loop_scope="session")
async def fresh(shared_tenants: Platform, tmp_path: Path) -> AsyncIterator[Tenant]:
    """A merchant of its own (a new ISO), so tampering with its chain affects no other test."""
    suffix = uuid.uuid4().hex[:8]
    slug = f"t-audit-{suffix}"
    await apply_tenants(
        shared_tenants,
        f"""
[[isos]]
slug = "t-audit-iso-{suffix}"
name = "Audit ISO {suffix}"

[[isos.merchants]]
slug = "{slug}"
name = "Audit {suffix}"
""",
        tmp_path,
    )
    async with system_transaction():
        found = await fetch("SELECT * FROM portal_locate_merchant($1)", slug)
    tenant = await shared_tenants.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
    assert tenant is not None
    yield tenant


async def emit_one(tenant: Tenant, name: str = "Ada") -> str:
    merchant = tenant.merchant
    customer = new_id("cus")
    payload = CustomerPayload(
        id=customer, merchant=merchant.id, email=f"{customer}@example.com", name=name, external_ref=None
    )
    async with tenant_transaction(merchant.iso_id):
        emitted = await emit(
            merchant, "customer.created", payload, actor=ACTOR, target=("customer", customer), customer_id=customer
        )
    return emitted.id


async def chain_rows(tenant: Tenant) -> list[dict]:
    async with tenant_transaction(tenant.merchant.iso_id):
        return await fetch(
            "SELECT id, seq, prev_hash, hash FROM portal_audit_event WHERE merchant_id = $1 ORDER BY seq",
            tenant.merchant.id,
        )


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
