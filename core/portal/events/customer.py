"""Emit an event a signed-in customer caused, from the request of their action."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from portal.access.actors import customer_actor
from portal.db.engine import tenant_transaction
from portal.events.bus import EmittedEvent, emit
from portal.web.state import customer_of, platform_of, tenant_of


async def emit_as_customer(
    request: Request[Any, Any, Any],
    event_type: str,
    payload: msgspec.Struct | dict[str, Any],
    *,
    target: tuple[str, str] | None = None,
) -> EmittedEvent:
    """Audit ``event_type`` as the request's customer did it, and queue its webhooks and handlers.

    The merchant, the customer actor (id, address, user agent, request id), the customer the
    event is about and the merchant's plugins all come from ``request``; ``target`` is the
    ``(kind, id)`` of what the event is about. It joins the open tenant transaction, or opens one,
    so the event is kept exactly when the change beside it is.
    """
    tenant, customer = tenant_of(request), customer_of(request)
    async with tenant_transaction(tenant.merchant.iso_id):
        return await emit(
            tenant.merchant,
            event_type,
            payload,
            actor=customer_actor(request, customer.id),
            target=target,
            customer_id=customer.id,
            enabled_plugins=tenant.enabled_plugins,
            registry=platform_of(request).registry,
        )
