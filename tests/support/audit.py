"""Audit helpers for tests: a merchant of its own, one emit, the chain's rows."""

from __future__ import annotations

import uuid
from pathlib import Path

from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.events.bus import Actor, emit
from portal.events.core_types import CustomerPayload
from portal.ids import new_id
from portal.platform import Platform
from portal.tenancy.models import Tenant
from portal.testing import apply_tenants

ACTOR = Actor(type="operator", id="op_test", ip="192.0.2.1", user_agent="pytest", request_id="req_test")


async def new_merchant(platform: Platform, tmp_path: Path) -> Tenant:
    """A merchant of a new ISO of its own."""
    suffix = uuid.uuid4().hex[:8]
    slug = f"t-audit-{suffix}"
    await apply_tenants(
        platform,
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
    tenant = await platform.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
    assert tenant is not None
    return tenant


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
