"""Where a ``switch`` link lands: complete its switch record and record ``customer.switched_in``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Request

from portal.sdk import N_, Claims, LinkPurpose, LinkRefusedError, Tenant, customer_actor, emit, platform_of
from portal_merchant_switch import records
from portal_merchant_switch.events import SwitchedIn


async def on_landing(request: Request[Any, Any, Any], tenant: Tenant, claims: Claims) -> None:
    """Refuse a switch link no switch was minted for (or whose source stopped being a sibling)."""
    landed = await records.land(tenant.merchant.id, claims.customer, claims.jti)
    if landed is None:
        raise LinkRefusedError("invalid")
    await emit(
        tenant.merchant,
        "customer.switched_in",
        SwitchedIn(id=landed["id"], customer=claims.customer, from_merchant_name=landed["from_merchant_name"]),
        actor=customer_actor(request, claims.customer),
        target=("customer", claims.customer),
        customer_id=claims.customer,
        enabled_plugins=tenant.enabled_plugins,
        registry=platform_of(request).registry,
    )


SWITCH_PURPOSE = LinkPurpose(
    name="switch",
    title=N_("Switch merchant"),
    default_ttl=timedelta(seconds=60),
    max_ttl=timedelta(seconds=120),
    single_use=True,
    on_landing=on_landing,
)
"""Minted on each switch, signed with the target merchant's key, bound to its customer; opens once."""
