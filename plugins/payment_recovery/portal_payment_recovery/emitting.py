"""Emitting the plugin's events about a case, in the caller's tenant transaction."""

from __future__ import annotations

import msgspec

from portal.sdk import Actor, Platform, Tenant, emit
from portal_payment_recovery.store import Case


async def emit_for(
    platform: Platform, tenant: Tenant, case: Case, event: str, payload: msgspec.Struct, actor: Actor
) -> None:
    """Emit ``event`` about ``case``: its target is the invoice, its customer the case's."""
    await emit(
        tenant.merchant,
        event,
        payload,
        actor=actor,
        target=("invoice", case.invoice_id),
        customer_id=case.customer_id,
        enabled_plugins=tenant.enabled_plugins,
        registry=platform.registry,
    )
