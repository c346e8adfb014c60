"""``emit``: record a domain event inside the business transaction.

In that same transaction it writes the audit record (chained per merchant), one delivery row
(the outbox) per subscribed webhook endpoint and one row per plugin handler. Nothing leaves the
database before commit; after commit a worker is kicked (:func:`portal.tasks.wake.kick_worker`),
and workers' polling picks up anything a lost kick missed. A rolled-back transaction leaves no
trace. Sending the rows is :mod:`portal.events.delivery`'s job, running handlers
:mod:`portal.events.handlers`'.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from portal.db.engine import TenantScopeError, after_commit, current_iso, fetch, transaction_lock
from portal.events.chain import GENESIS, chain_hash
from portal.ids import new_id
from portal.tasks.runtime import current_platform
from portal.tasks.wake import kick_worker
from portal.tenancy.models import MerchantView

if TYPE_CHECKING:
    from portal.plugins.registry import PluginRegistry

ActorType = Literal["customer", "merchant_api_key", "iso_api_key", "operator", "system"]


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who did it, and from where."""

    type: ActorType
    id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


SYSTEM = Actor(type="system")


class EmittedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The audit record an emit wrote."""

    id: str
    seq: int
    hash: str
    type: str
    deliveries: int
    handlers: int


class UnknownEventError(ValueError):
    """The event type is not registered by any plugin (or core)."""


def envelope(record: dict[str, Any], merchant_id: str) -> str:
    """The webhook body for an audit record: ``{id, type, timestamp, merchant, data, audit_seq, request_id}``."""
    return json.dumps(
        {
            "id": record["id"],
            "type": record["type"],
            "timestamp": record["occurred_at"].astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "merchant": merchant_id,
            "data": {"object": record["data"]},
            "audit_seq": record["seq"],
            "request_id": record["request_id"],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def refuse_floats(event_type: str, parts: dict[str, Any]) -> None:
    """Raise ``TypeError`` when an audit record would hold a float.

    PostgreSQL's ``jsonb`` writes numbers back in its own form (``1e20`` comes back as
    ``100000000000000000000``), so a record hashed with a float would fail verification later.
    Amounts are integers in minor units; anything else fractional travels as a string.
    """
    stack: list[tuple[str, Any]] = list(parts.items())
    while stack:
        where, value = stack.pop()
        if isinstance(value, float):
            raise TypeError(f"{event_type}: {where} is a float; audit records hold integers or strings instead")
        if isinstance(value, dict):
            stack.extend((f"{where}.{key}", item) for key, item in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))


async def emit(
    merchant: MerchantView,
    event_type: str,
    payload: msgspec.Struct | dict[str, Any],
    *,
    actor: Actor,
    target: tuple[str, str] | None = None,
    customer_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    enabled_plugins: frozenset[str] | None = None,
    registry: PluginRegistry | None = None,
) -> EmittedEvent:
    """Audit ``event_type`` and queue its webhooks and handlers, in the current tenant transaction.

    ``enabled_plugins`` (the tenant's) saves a query; without it the merchant's are looked up,
    so handlers of plugins that are off for the merchant never run.

    ``registry`` (the platform's, ``platform.registry``) holds the event types and the plugins'
    handlers; pass it when you have the platform. Without it, the registry of the platform
    started in this process (:func:`portal.tasks.runtime.current_platform`) is used: a fallback
    for code with no platform at hand, which fails when no platform has been started.
    """
    if current_iso() != merchant.iso_id:
        raise TenantScopeError("emit runs inside the merchant's tenant transaction")
    if registry is None:
        registry = current_platform().registry
    registered = registry.event_types.get(event_type)
    if registered is None:
        raise UnknownEventError(f"event type {event_type!r} is not registered")
    if isinstance(payload, msgspec.Struct):
        if not isinstance(payload, registered.payload):
            raise TypeError(f"{event_type} carries {registered.payload.__name__}, not {type(payload).__name__}")
        data = msgspec.to_builtins(payload)
    else:
        data = msgspec.to_builtins(msgspec.convert(payload, registered.payload))
    refuse_floats(event_type, {"data": data, "before": before, "after": after})
    await transaction_lock("portal-audit", merchant.id)
    last = await fetch(
        "SELECT seq, hash FROM portal_audit_event WHERE merchant_id = $1 ORDER BY seq DESC LIMIT 1", merchant.id
    )
    record: dict[str, Any] = {
        "id": new_id("evt"),
        "iso_id": merchant.iso_id,
        "merchant_id": merchant.id,
        "seq": (last[0]["seq"] + 1) if last else 1,
        "type": event_type,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "target_type": target[0] if target else None,
        "target_id": target[1] if target else None,
        "customer_id": customer_id,
        "data": data,
        "before": before,
        "after": after,
        "ip": actor.ip,
        "user_agent": actor.user_agent,
        "request_id": actor.request_id,
        "occurred_at": datetime.now(UTC),
    }
    prev_hash = last[0]["hash"] if last else GENESIS
    digest = chain_hash(prev_hash, record)
    await fetch(
        """
        INSERT INTO portal_audit_event (id, iso_id, merchant_id, seq, prev_hash, hash, type, actor_type, actor_id,
            target_type, target_id, customer_id, data, before, after, ip, user_agent, request_id, occurred_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb, $15::jsonb,
                $16, $17, $18, $19)
        """,
        record["id"], record["iso_id"], record["merchant_id"], record["seq"], prev_hash, digest, event_type,
        actor.type, actor.id, record["target_type"], record["target_id"], customer_id,
        json.dumps(data), None if before is None else json.dumps(before), None if after is None else json.dumps(after),
        actor.ip, actor.user_agent, actor.request_id, record["occurred_at"],
    )  # fmt: skip
    body = envelope(record, merchant.id)
    endpoints = await fetch(
        "SELECT id FROM portal_webhook_endpoint WHERE merchant_id = $1 AND enabled "
        "AND (event_types = '[]'::jsonb OR event_types ? $2)",
        merchant.id,
        event_type,
    )
    if endpoints:
        await fetch(
            """
            INSERT INTO portal_webhook_delivery (id, iso_id, merchant_id, endpoint_id, event_id, event_type, payload)
            SELECT message_id, $1, $2, endpoint_id, $3, $4, $5
              FROM unnest($6::text[], $7::text[]) AS m(message_id, endpoint_id)
            """,
            merchant.iso_id, merchant.id, record["id"], event_type, body,
            [new_id("msg") for _ in endpoints], [row["id"] for row in endpoints],
        )  # fmt: skip
    if enabled_plugins is None:
        rows = await fetch(
            "SELECT plugin_key FROM portal_plugin_activation WHERE merchant_id = $1 AND enabled", merchant.id
        )
        enabled_plugins = frozenset(row["plugin_key"] for row in rows)
    handler_names = [
        name
        for name, (plugin_key, handler) in registry.event_handlers.items()
        if plugin_key in enabled_plugins and event_type in handler.event_types
    ]
    if handler_names:
        await fetch(
            """
            INSERT INTO portal_event_handling (id, iso_id, merchant_id, event_id, handler)
            SELECT row_id, $1, $2, $3, handler FROM unnest($4::text[], $5::text[]) AS h(row_id, handler)
            """,
            merchant.iso_id, merchant.id, record["id"], [new_id("eh") for _ in handler_names], handler_names,
        )  # fmt: skip
    deliveries, handlers = len(endpoints), len(handler_names)
    if deliveries or handlers:
        after_commit(kick_worker)
    return EmittedEvent(
        id=record["id"], seq=record["seq"], hash=digest, type=event_type, deliveries=deliveries, handlers=handlers
    )
