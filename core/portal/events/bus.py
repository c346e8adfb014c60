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
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import msgspec

from portal.db.engine import (
    Journal,
    TenantScopeError,
    after_commit,
    before_commit,
    current_iso,
    fetch,
    json_value,
    transaction_lock,
    transaction_state,
)
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
    """The audit record an emit wrote (or, in a transaction that records its events at commit, will write)."""

    id: str
    seq: int | None
    """``None`` in a transaction that records its events at commit (:func:`record_events_at_commit`)."""
    hash: str | None
    """As ``seq``."""
    type: str
    deliveries: int | None
    """Webhook deliveries queued; ``None`` as ``seq``."""
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
    record: dict[str, Any] = {
        "id": new_id("evt"),
        "iso_id": merchant.iso_id,
        "merchant_id": merchant.id,
        "seq": None,
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
    pending = transaction_state().get(AT_COMMIT)
    if pending is not None:
        pending.append(Pending(record, handler_names))
        return EmittedEvent(
            id=record["id"], seq=None, hash=None, type=event_type, deliveries=None, handlers=len(handler_names)
        )
    seq, prev_hash = await _chain_head(merchant.id)
    record["seq"] = seq + 1
    digest = chain_hash(prev_hash, record)
    # One round trip: the record, and the endpoints that want it (a WITH that writes always runs).
    endpoints = await fetch(
        """
        WITH recorded AS (
            INSERT INTO portal_audit_event (id, iso_id, merchant_id, seq, prev_hash, hash, type, actor_type, actor_id,
                target_type, target_id, customer_id, data, before, after, ip, user_agent, request_id, occurred_at)
            VALUES ($1, $2, $3::text, $4, $5, $6, $7::text, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb,
                    $15::jsonb, $16, $17, $18, $19))
        SELECT id FROM portal_webhook_endpoint
         WHERE merchant_id = $3 AND enabled AND (event_types = '[]'::jsonb OR event_types ? $7)
        """,
        *_columns(record, prev_hash, digest),
    )
    _heads()[merchant.id] = (record["seq"], digest)
    await _queue(merchant.iso_id, merchant.id, [(record, [row["id"] for row in endpoints], handler_names)])
    return EmittedEvent(
        id=record["id"], seq=record["seq"], hash=digest, type=event_type, deliveries=len(endpoints),
        handlers=len(handler_names),
    )  # fmt: skip


AT_COMMIT = "portal.events.at_commit"


class Pending(NamedTuple):
    """An event emitted in a transaction that records its events at commit."""

    record: dict[str, Any]
    handlers: list[str]


def record_events_at_commit() -> None:
    """Until the current tenant transaction commits, ``emit`` keeps its events and records them all at commit.

    For transactions that emit many events (a batch of renewals): just before the commit, each
    merchant's events are chained in the order they were emitted and written in one statement,
    with their webhook deliveries and handler runs in one more each, and the merchant's audit
    lock is held only from then until the commit, not from the first event on. ``emit`` returns
    the event's id and handler count; its ``seq``, ``hash`` and ``deliveries`` are ``None``. An
    exception rolls everything back, as always; a savepoint that rolls back drops the events
    emitted inside it.
    """
    state = transaction_state()
    if AT_COMMIT in state:
        return
    pending = state[AT_COMMIT] = Journal()

    async def record() -> None:
        state.pop(AT_COMMIT, None)  # anything emitted from here on is written at once
        await _record_pending(list(pending))
        pending.clear()

    before_commit(record, last=True)


async def _record_pending(pending: list[Pending]) -> None:
    """Chain and write the events kept for the commit, merchant by merchant (in id order: one lock order)."""
    by_merchant: dict[str, list[Pending]] = {}
    for event in pending:
        by_merchant.setdefault(event.record["merchant_id"], []).append(event)
    for merchant_id in sorted(by_merchant):
        events = by_merchant[merchant_id]
        seq, prev_hash = await _chain_head(merchant_id)
        columns: list[tuple[Any, ...]] = []
        for event in events:
            seq += 1
            event.record["seq"] = seq
            digest = chain_hash(prev_hash, event.record)
            columns.append(_columns(event.record, prev_hash, digest))
            prev_hash = digest
        endpoints = await fetch(
            """
            WITH recorded AS (
                INSERT INTO portal_audit_event (id, iso_id, merchant_id, seq, prev_hash, hash, type, actor_type,
                    actor_id, target_type, target_id, customer_id, data, before, after, ip, user_agent, request_id,
                    occurred_at)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::jsonb[],
                    $14::jsonb[], $15::jsonb[], $16::text[], $17::text[], $18::text[], $19::timestamptz[]))
            SELECT id, event_types FROM portal_webhook_endpoint WHERE merchant_id = $20 AND enabled
            """,
            *(list(column) for column in zip(*columns, strict=True)),
            merchant_id,
        )
        _heads()[merchant_id] = (seq, prev_hash)
        wanted = [(row["id"], json_value(row["event_types"])) for row in endpoints]
        await _queue(
            events[0].record["iso_id"],
            merchant_id,
            [
                (event.record, [endpoint for endpoint, types in wanted if not types or event.record["type"] in types],
                 event.handlers)
                for event in events
            ],
        )  # fmt: skip


def _columns(record: dict[str, Any], prev_hash: str, digest: str) -> tuple[Any, ...]:
    """The audit row's values, in ``portal_audit_event``'s insert order."""
    before, after = record["before"], record["after"]
    return (
        record["id"], record["iso_id"], record["merchant_id"], record["seq"], prev_hash, digest, record["type"],
        record["actor_type"], record["actor_id"], record["target_type"], record["target_id"], record["customer_id"],
        json.dumps(record["data"]), None if before is None else json.dumps(before),
        None if after is None else json.dumps(after), record["ip"], record["user_agent"], record["request_id"],
        record["occurred_at"],
    )  # fmt: skip


async def _queue(iso_id: str, merchant_id: str, events: list[tuple[dict[str, Any], list[str], list[str]]]) -> None:
    """Write the webhook deliveries and handler runs of recorded events: (record, endpoint ids, handler names)."""
    deliveries = [(record, endpoint) for record, endpoints, _ in events for endpoint in endpoints]
    if deliveries:
        await fetch(
            """
            INSERT INTO portal_webhook_delivery (id, iso_id, merchant_id, endpoint_id, event_id, event_type, payload)
            SELECT message_id, $1, $2, endpoint_id, event_id, event_type, payload
              FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                   AS m(message_id, endpoint_id, event_id, event_type, payload)
            """,
            iso_id, merchant_id, [new_id("msg") for _ in deliveries], [endpoint for _, endpoint in deliveries],
            [record["id"] for record, _ in deliveries], [record["type"] for record, _ in deliveries],
            [envelope(record, merchant_id) for record, _ in deliveries],
        )  # fmt: skip
    handling = [(record["id"], handler) for record, _, handlers in events for handler in handlers]
    if handling:
        await fetch(
            """
            INSERT INTO portal_event_handling (id, iso_id, merchant_id, event_id, handler)
            SELECT row_id, $1, $2, event_id, handler FROM unnest($3::text[], $4::text[], $5::text[])
                   AS h(row_id, event_id, handler)
            """,
            iso_id, merchant_id, [new_id("eh") for _ in handling], [event_id for event_id, _ in handling],
            [handler for _, handler in handling],
        )  # fmt: skip
    if deliveries or handling:
        after_commit(kick_worker)


def _heads() -> dict[str, tuple[int, str]]:
    """The audit chain heads this transaction holds the lock of, by merchant: (last seq, its hash)."""
    heads: dict[str, tuple[int, str]] = transaction_state().setdefault("portal.audit_heads", {})
    return heads


async def _chain_head(merchant_id: str) -> tuple[int, str]:
    """The merchant's last audit record (seq, hash), or (0, genesis), with the chain locked for this transaction.

    The first emit of a transaction takes the merchant's audit lock and reads the head; later
    ones in the same transaction hold the lock already and know the head they wrote.
    """
    head = _heads().get(merchant_id)
    if head is not None:
        return head
    await transaction_lock("portal-audit", merchant_id)
    last = await fetch(
        "SELECT seq, hash FROM portal_audit_event WHERE merchant_id = $1 ORDER BY seq DESC LIMIT 1", merchant_id
    )
    return (last[0]["seq"], last[0]["hash"]) if last else (0, GENESIS)
