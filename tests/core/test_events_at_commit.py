"""Events recorded at commit, and the transaction state that savepoints cut back.

``record_events_at_commit`` is what batches of renewals and charges use: the events of the
transaction are chained and written just before it commits. The chain must come out exactly as
if each event had been written as it was emitted.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from portal.db.engine import before_commit, fetch, savepoint, tenant_transaction
from portal.events.bus import SYSTEM, emit, record_events_at_commit
from portal.events.core_types import CustomerPayload
from portal.events.verify import verify_chain
from portal.ids import new_id
from portal.platform import Platform
from portal.tenancy.models import Tenant
from portal.testing import customer_id
from support.audit import ACTOR, chain_rows, emit_one, new_merchant


def payload(tenant: Tenant, name: str) -> CustomerPayload:
    customer = new_id("cus")
    return CustomerPayload(
        id=customer, merchant=tenant.merchant.id, email=f"{customer}@example.com", name=name, external_ref=None
    )


async def emit_named(tenant: Tenant, name: str) -> str:
    """Emit ``customer.created`` for a new customer named ``name`` in the open transaction; the event id."""
    data = payload(tenant, name)
    emitted = await emit(tenant.merchant, "customer.created", data, actor=ACTOR, customer_id=data.id)
    return emitted.id


async def add_endpoint(tenant: Tenant, event_types: str) -> str:
    endpoint = new_id("we")
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            "INSERT INTO portal_webhook_endpoint (id, iso_id, merchant_id, url, event_types, secret) "
            "VALUES ($1, $2, $3, 'https://127.0.0.1/at-commit-hook', $4::jsonb, 'whsec_dGVzdA==')",
            endpoint, tenant.merchant.iso_id, tenant.merchant.id, event_types,
        )  # fmt: skip
    return endpoint


async def test_events_kept_for_the_commit_are_chained_in_emit_order_after_earlier_ones(
    shared_tenants: Platform, tmp_path: Path
) -> None:
    tenant = await new_merchant(shared_tenants, tmp_path)
    (tmp_path / "other").mkdir()
    other = await new_merchant(shared_tenants, tmp_path / "other")
    first = await emit_one(tenant, "Before")
    kept: list[str] = []
    async with tenant_transaction(tenant.merchant.iso_id):
        immediate = await emit_named(tenant, "Immediate")  # before the switch: written at once
        record_events_at_commit()
        record_events_at_commit()  # a second call changes nothing
        for n in range(5):
            data = payload(tenant, f"Kept {n}")
            emitted = await emit(tenant.merchant, "customer.created", data, actor=ACTOR, customer_id=data.id)
            assert emitted.seq is None and emitted.hash is None and emitted.deliveries is None
            kept.append(emitted.id)
        # Nothing of them is written before the commit.
        assert await fetch("SELECT id FROM portal_audit_event WHERE id = ANY($1::text[])", kept) == []
    rows = await chain_rows(tenant)
    assert [row["id"] for row in rows] == [first, immediate, *kept]
    assert [row["seq"] for row in rows] == list(range(1, 8))
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["hash"]
    async with tenant_transaction(tenant.merchant.iso_id):
        result = await verify_chain(tenant.merchant.id)
    assert result.ok and result.records == 7
    assert await chain_rows(other) == []  # a merchant of another ISO is untouched


async def test_kept_events_queue_deliveries_for_the_endpoints_that_want_them(
    shared_tenants: Platform, tmp_path: Path
) -> None:
    tenant = await new_merchant(shared_tenants, tmp_path)
    every = await add_endpoint(tenant, "[]")
    updates_only = await add_endpoint(tenant, '["customer.updated"]')
    async with tenant_transaction(tenant.merchant.iso_id):
        record_events_at_commit()
        created = await emit_named(tenant, "Created")
    async with tenant_transaction(tenant.merchant.iso_id):
        deliveries = await fetch(
            "SELECT endpoint_id, event_type, payload FROM portal_webhook_delivery WHERE event_id = $1", created
        )
        seq = (await fetch("SELECT seq FROM portal_audit_event WHERE id = $1", created))[0]["seq"]
    assert [row["endpoint_id"] for row in deliveries] == [every]
    assert updates_only not in {row["endpoint_id"] for row in deliveries}
    assert deliveries[0]["event_type"] == "customer.created"
    assert f'"audit_seq":{seq},' in deliveries[0]["payload"]


async def test_kept_events_queue_the_handlers_of_the_merchants_plugins(shared_tenants: Platform) -> None:
    tenant = await shared_tenants.tenants.resolve("t-greenfield.portal.localhost")
    assert tenant is not None
    jane = await customer_id(tenant.merchant.slug, "jane@globalco.com")
    async with tenant_transaction(tenant.merchant.iso_id):
        record_events_at_commit()
        emitted = await emit(
            tenant.merchant, "customer.updated",
            {"id": jane, "merchant": tenant.merchant.id, "email": "jane@globalco.com", "name": "Jane",
             "external_ref": None},
            actor=SYSTEM, customer_id=jane, enabled_plugins=tenant.enabled_plugins,
        )  # fmt: skip
        assert emitted.handlers == 2
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch("SELECT handler FROM portal_event_handling WHERE event_id = $1", emitted.id)
    assert {row["handler"] for row in rows} == {"example.note_changes", "example.always_fails"}


async def test_a_rolled_back_transaction_writes_none_of_its_kept_events(
    shared_tenants: Platform, tmp_path: Path
) -> None:
    tenant = await new_merchant(shared_tenants, tmp_path)
    await add_endpoint(tenant, "[]")

    class Boom(Exception):
        pass

    kept: list[str] = []
    with pytest.raises(Boom):
        async with tenant_transaction(tenant.merchant.iso_id):
            record_events_at_commit()
            kept.append(await emit_named(tenant, "Never"))
            raise Boom
    async with tenant_transaction(tenant.merchant.iso_id):
        assert await fetch("SELECT id FROM portal_audit_event WHERE merchant_id = $1", tenant.merchant.id) == []
        assert await fetch("SELECT id FROM portal_webhook_delivery WHERE event_id = ANY($1::text[])", kept) == []
    assert await emit_one(tenant)  # the next event takes seq 1
    assert [row["seq"] for row in await chain_rows(tenant)] == [1]


async def test_a_savepoint_that_rolls_back_drops_the_events_kept_inside_it(
    shared_tenants: Platform, tmp_path: Path
) -> None:
    tenant = await new_merchant(shared_tenants, tmp_path)
    async with tenant_transaction(tenant.merchant.iso_id):
        record_events_at_commit()
        before = await emit_named(tenant, "Before")
        with pytest.raises(ZeroDivisionError):
            async with savepoint():
                await emit_named(tenant, "Undone")
                raise ZeroDivisionError
        after = await emit_named(tenant, "After")
    rows = await chain_rows(tenant)
    assert [row["id"] for row in rows] == [before, after]
    assert [row["seq"] for row in rows] == [1, 2]


async def test_an_event_undone_by_a_savepoint_leaves_no_gap_in_the_chain(
    shared_tenants: Platform, tmp_path: Path
) -> None:
    """The chain's head a transaction remembers is forgotten with the savepoint that wrote past it."""
    tenant = await new_merchant(shared_tenants, tmp_path)
    async with tenant_transaction(tenant.merchant.iso_id):
        first = await emit_named(tenant, "First")
        with pytest.raises(ZeroDivisionError):
            async with savepoint():
                await emit_named(tenant, "Undone")
                raise ZeroDivisionError
        second = await emit_named(tenant, "Second")
    rows = await chain_rows(tenant)
    assert [row["id"] for row in rows] == [first, second]
    assert [row["seq"] for row in rows] == [1, 2]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    async with tenant_transaction(tenant.merchant.iso_id):
        assert (await verify_chain(tenant.merchant.id)).ok


async def test_events_emitted_by_the_transaction_s_other_commit_steps_are_written_too(
    shared_tenants: Platform, tmp_path: Path
) -> None:
    tenant = await new_merchant(shared_tenants, tmp_path)
    emitted: list[str] = []

    async def late_step() -> None:
        emitted.append(await emit_named(tenant, "Late"))

    async with tenant_transaction(tenant.merchant.iso_id):
        record_events_at_commit()
        before_commit(late_step)  # registered after the events' own step, still run before it
        emitted.append(await emit_named(tenant, "First"))
    rows = await chain_rows(tenant)
    assert [row["id"] for row in rows] == emitted
    assert [row["seq"] for row in rows] == [1, 2]
