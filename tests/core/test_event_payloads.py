"""Audit records hold no floats: PostgreSQL would write them back differently and break the chain."""

from __future__ import annotations

import pytest

from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import SYSTEM, emit, refuse_floats
from portal.platform import Platform

GREENFIELD = "t-greenfield.portal.localhost"


def test_floats_are_named_wherever_they_are() -> None:
    refuse_floats("x.y", {"data": {"amount": 1200, "items": [{"name": "bread", "price": "3.10"}]}, "before": None})
    with pytest.raises(TypeError, match=r"data\.items\[0\]\.price is a float"):
        refuse_floats("x.y", {"data": {"items": [{"price": 3.1}]}})
    with pytest.raises(TypeError, match="after.ratio is a float"):
        refuse_floats("x.y", {"after": {"ratio": 1e20}})


async def test_emit_refuses_a_float_and_writes_nothing(shared_tenants: Platform) -> None:
    tenant = await shared_tenants.tenants.resolve(GREENFIELD)
    assert tenant is not None
    payload = {
        "id": "cus_x",
        "merchant": tenant.merchant.id,
        "email": "a@example.com",
        "name": "A",
        "external_ref": None,
    }
    count = "SELECT count(*) AS n FROM portal_audit_event WHERE merchant_id = $1"
    async with tenant_transaction(tenant.merchant.iso_id):
        before = (await fetch(count, tenant.merchant.id))[0]["n"]
    with pytest.raises(TypeError, match="before.score is a float"):
        async with tenant_transaction(tenant.merchant.iso_id):
            await emit(
                tenant.merchant,
                "customer.updated",
                payload,
                actor=SYSTEM,
                before={"score": 1e20},
                after={"score": 2},
                enabled_plugins=tenant.enabled_plugins,
            )
    async with tenant_transaction(tenant.merchant.iso_id):
        assert (await fetch(count, tenant.merchant.id))[0]["n"] == before
