"""Plugin event handlers run in the worker, isolated from each other, failures retried."""

from __future__ import annotations

import asyncpg

from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import SYSTEM, emit
from portal.events.handlers import run_due_handlers
from portal.platform import Platform
from portal.testing import customer_id


async def _emit_update(platform: Platform, host: str, name: str) -> tuple[str, str]:
    tenant = await platform.tenants.resolve(host)
    assert tenant is not None
    slug = tenant.merchant.slug
    jane = await customer_id(slug, "jane@globalco.com")
    async with tenant_transaction(tenant.merchant.iso_id):
        emitted = await emit(
            tenant.merchant,
            "customer.updated",
            {
                "id": jane,
                "merchant": tenant.merchant.id,
                "email": "jane@globalco.com",
                "name": name,
                "external_ref": None,
            },
            actor=SYSTEM,
            target=("customer", jane),
            customer_id=jane,
            enabled_plugins=tenant.enabled_plugins,
        )
    return emitted.id, tenant.merchant.iso_id


async def _handling(platform: Platform, event_id: str) -> dict[str, dict]:
    owner = await asyncpg.connect(platform.settings.database_url)
    try:
        rows = await owner.fetch("SELECT * FROM portal_event_handling WHERE event_id = $1", event_id)
    finally:
        await owner.close()
    return {row["handler"]: dict(row) for row in rows}


async def test_handlers_run_isolated_and_failures_are_retried(shared_tenants: Platform) -> None:
    event_id, iso_id = await _emit_update(shared_tenants, "t-greenfield.portal.localhost", "Jane Handler")
    queued = await _handling(shared_tenants, event_id)
    assert set(queued) == {"example.note_changes", "example.always_fails"}
    while await run_due_handlers(shared_tenants.registry, iso_id):
        pass
    done = await _handling(shared_tenants, event_id)
    assert done["example.note_changes"]["status"] == "succeeded"
    failing = done["example.always_fails"]
    assert failing["status"] == "pending" and failing["attempts"] == 1
    assert "this handler always fails" in failing["last_error"]
    assert failing["next_attempt_at"] > failing["created_at"]
    async with tenant_transaction(iso_id):
        notes = await fetch("SELECT body FROM example_note WHERE id = $1", "note_" + event_id)
        never = await fetch("SELECT 1 FROM example_note WHERE id = 'x'")
    assert len(notes) == 1
    assert notes[0]["body"].startswith("customer.updated #") and notes[0]["body"].endswith(": Jane Handler")
    assert never == []  # the failing handler's own writes were rolled back


async def test_handlers_of_a_plugin_that_is_off_do_not_run(shared_tenants: Platform) -> None:
    event_id, _ = await _emit_update(shared_tenants, "t-pinnacle.portal.localhost", "Jane Off")
    assert await _handling(shared_tenants, event_id) == {}


async def test_a_rolled_back_emit_leaves_no_trace(shared_tenants: Platform) -> None:
    tenant = await shared_tenants.tenants.resolve("t-greenfield.portal.localhost")
    assert tenant is not None
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    event_ids: list[str] = []
    try:
        async with tenant_transaction(tenant.merchant.iso_id):
            emitted = await emit(
                tenant.merchant,
                "customer.updated",
                {"id": jane, "merchant": tenant.merchant.id, "email": "j@g.com", "name": "Gone", "external_ref": None},
                actor=SYSTEM,
                enabled_plugins=tenant.enabled_plugins,
            )
            event_ids.append(emitted.id)
            raise RuntimeError("the business write failed")
    except RuntimeError:
        pass
    owner = await asyncpg.connect(shared_tenants.settings.database_url)
    try:
        for table, column in (
            ("portal_audit_event", "id"),
            ("portal_webhook_delivery", "event_id"),
            ("portal_event_handling", "event_id"),
        ):
            assert await owner.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", event_ids[0]) == 0
    finally:
        await owner.close()


async def test_without_the_tenants_plugins_emit_looks_them_up(shared_tenants: Platform) -> None:
    for host, expected in (("t-pinnacle.portal.localhost", 0), ("t-greenfield.portal.localhost", 2)):
        tenant = await shared_tenants.tenants.resolve(host)
        assert tenant is not None
        jane = await customer_id(tenant.merchant.slug, "jane@globalco.com")
        async with tenant_transaction(tenant.merchant.iso_id):
            emitted = await emit(
                tenant.merchant,
                "customer.updated",
                {"id": jane, "merchant": tenant.merchant.id, "email": "j@g.com", "name": "J", "external_ref": None},
                actor=SYSTEM,
            )
        assert emitted.handlers == expected, host
