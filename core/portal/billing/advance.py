"""Test clocks: move a sandbox merchant's time forward and run what falls due, as the worker would.

:func:`advance_clock` moves the merchant's clock (``portal_billing_clock``) step by step: to
each time something falls due (a period end, a pause end) up to the target, and then to the
target. At each step it queues what is due exactly as the scheduled job ``portal.billing.renewals``
does (:func:`portal.billing.engine.queue_due`) and then claims and runs this merchant's renew and
charge tasks itself through the durable-task runner, one after another, until none is left; a
task a worker holds meanwhile is waited for. Renewals, scheduled cancellations, pause ends and
charges therefore happen in order, with the same code, dedupe keys and order ids as in the
worker, and the events they emit queue their webhooks as usual.

Only merchants whose gateway is the sandbox have test clocks (``clock_not_allowed`` otherwise);
time only moves forward (``clock_backwards``).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from portal.billing import clock, engine
from portal.billing.errors import BillingError
from portal.db.engine import current_iso, fetch, tenant_transaction
from portal.tasks import durable

if TYPE_CHECKING:
    from portal.platform import Platform
    from portal.tenancy.models import Tenant

MAX_STEPS = 10_000
"""Steps one advance may take (a daily price over 27 years); more is refused as a runaway."""
TASK_BATCH = 50
HELD_POLL = 0.05
"""Seconds between looks at tasks a worker holds for this merchant."""

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

NEXT_DUE = """
SELECT min(CASE WHEN status = 'paused' THEN resumes_at ELSE current_period_end END) AS at
  FROM portal_billing_subscription
 WHERE merchant_id = $1
   AND (((status IN ('active', 'trialing') OR (status = 'past_due' AND cancel_at_period_end))
         AND current_period_end > $2)
        OR (status = 'paused' AND resumes_at > $2))
"""


class ClockEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event emitted while the clock moved, with the clock's time when it happened."""

    at: datetime
    id: str
    type: str
    target: str | None


class AdvanceReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`advance_clock` did."""

    merchant: str
    previous: datetime
    """The merchant's time before."""
    now: datetime
    """The merchant's time after (the target)."""
    steps: int
    """Times the clock stopped at (each time something fell due, and the target)."""
    renewed: list[str]
    """Subscriptions that entered a new period (``subscription.renewed``), in order; one per period."""
    canceled: list[str]
    resumed: list[str]
    invoices: list[str]
    """Invoices finalized."""
    payments_succeeded: list[str]
    """Invoices paid by a charge."""
    payments_failed: list[str]
    """Invoices whose charge was declined or failed."""
    tasks_run: int
    webhooks_queued: int
    """Webhook deliveries queued for the events below."""
    events: list[ClockEvent]


def parse_duration(text: str) -> timedelta:
    """``31d``, ``2w``, ``1d12h``, ``90m``, ``45s`` as a timedelta (``ValueError`` for anything else)."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or _DURATION.sub("", compact).strip():
        raise ValueError(f"not a duration: {text!r} (use e.g. 31d, 2w, 1d12h, 90m)")
    total = timedelta()
    for amount, unit in parts:
        total += timedelta(**{_UNITS[unit]: int(amount)})
    return total


async def advance_clock(platform: Platform, tenant: Tenant, to: datetime) -> AdvanceReport:
    """Move the merchant's clock to ``to``, running every renewal, cancellation, pause end and charge on the way.

    Runs outside any transaction (charges call the gateway between their own transactions) and
    returns when everything that fell due has run.
    """
    clock.check_allowed(tenant)
    if current_iso() is not None:
        raise RuntimeError("advance_clock opens its own transactions; call it outside one")
    if to.tzinfo is None:
        raise ValueError("the target time must be timezone-aware")
    merchant = tenant.merchant
    previous = await clock.merchant_now(merchant.id, iso_id=merchant.iso_id)
    if to < previous:
        raise BillingError("clock_backwards", f"the clock is at {previous.isoformat()}; it only moves forward")
    first_seq = await _last_seq(merchant.iso_id, merchant.id)
    runner = f"clock:{merchant.slug}:{secrets.token_hex(3)}"
    stops: list[tuple[datetime, int]] = []
    tasks_run = 0
    now = previous  # (the clock is set from the first step on: a new clock starts at the real time or later)
    while True:
        tasks_run += await _run_due(platform, tenant, now, runner)
        stops.append((now, await _last_seq(merchant.iso_id, merchant.id)))
        if now >= to:
            break
        if len(stops) >= MAX_STEPS:
            raise BillingError("clock_runaway", f"more than {MAX_STEPS} steps; advance in smaller moves")
        async with tenant_transaction(merchant.iso_id):
            rows = await fetch(NEXT_DUE, merchant.id, now)
        upcoming: datetime | None = rows[0]["at"] if rows else None
        now = upcoming if upcoming is not None and upcoming < to else to
        await _set(tenant, now)
    return await _report(tenant, previous, to, first_seq, stops, tasks_run)


async def _set(tenant: Tenant, now: datetime) -> None:
    async with tenant_transaction(tenant.merchant.iso_id):
        await clock.set_clock(tenant, now)


async def _last_seq(iso_id: str, merchant_id: str) -> int:
    async with tenant_transaction(iso_id):
        rows = await fetch(
            "SELECT coalesce(max(seq), 0) AS seq FROM portal_audit_event WHERE merchant_id = $1", merchant_id
        )
    return int(rows[0]["seq"])


async def _run_due(platform: Platform, tenant: Tenant, now: datetime, runner: str) -> int:
    """Queue what is due at ``now`` and run the merchant's billing tasks until none is left; return how many ran."""
    merchant = tenant.merchant
    lease = timedelta(seconds=platform.settings.task_lease_seconds)
    ran: list[str] = []
    deadline = time.monotonic() + lease.total_seconds() + 5
    queued = True
    while True:
        async with tenant_transaction(merchant.iso_id):
            if queued:  # a renewal that leaves the period due still (a long jump) is queued again
                queued = await engine.queue_due(merchant_id=merchant.id, now=now) > 0
            claimed = await fetch(
                """
                UPDATE portal_task t
                   SET attempts = t.attempts + 1, next_attempt_at = now() + $4::interval, claimed_by = $5
                 WHERE t.id IN (SELECT id FROM portal_task
                                 WHERE status = 'pending' AND merchant_id = $1 AND name = ANY($2::text[])
                                   AND (claimed_by IS NULL OR next_attempt_at <= now()) AND id <> ALL($3::text[])
                                 ORDER BY created_at, id LIMIT $6 FOR UPDATE SKIP LOCKED)
                RETURNING t.id, t.name, t.merchant_id, t.args, t.attempts, t.max_attempts, t.created_at
                """,
                merchant.id, [engine.RENEW, engine.CHARGE], ran, lease, runner, TASK_BATCH,
            )  # fmt: skip
            held = 0
            if not claimed:
                rows = await fetch(
                    "SELECT count(*) AS n FROM portal_task WHERE status = 'pending' AND merchant_id = $1 "
                    "AND name = ANY($2::text[]) AND claimed_by IS NOT NULL AND next_attempt_at > now()",
                    merchant.id,
                    [engine.RENEW, engine.CHARGE],
                )
                held = int(rows[0]["n"])
        if claimed:
            for row in sorted(claimed, key=lambda r: (r["created_at"], r["id"])):
                ran.append(row["id"])
                await _run_task(platform, merchant.iso_id, row)
            queued = True
            continue
        if held and time.monotonic() < deadline:
            await asyncio.sleep(HELD_POLL)  # a worker runs some of it: wait, so steps stay in order
            queued = True
            continue
        if queued:
            continue
        return len(ran)


async def _run_task(platform: Platform, iso_id: str, row: dict[str, Any]) -> None:
    """Run one claimed task with the worker's runner (retries and outcome recorded as in the worker)."""
    await durable.run_claimed(platform, iso_id, row)


async def _report(
    tenant: Tenant, previous: datetime, to: datetime, first_seq: int, stops: list[tuple[datetime, int]], tasks_run: int
) -> AdvanceReport:
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        rows = await fetch(
            "SELECT id, seq, type, target_id FROM portal_audit_event WHERE merchant_id = $1 AND seq > $2 ORDER BY seq",
            merchant.id,
            first_seq,
        )
        ids = [row["id"] for row in rows]
        queued = await fetch("SELECT count(*) AS n FROM portal_webhook_delivery WHERE event_id = ANY($1::text[])", ids)
    events: list[ClockEvent] = []
    for row in rows:
        at = next((stop for stop, last in stops if row["seq"] <= last), to)
        events.append(ClockEvent(at=at, id=row["id"], type=row["type"], target=row["target_id"]))

    def targets(kind: str) -> list[str]:
        return [event.target for event in events if event.type == kind and event.target is not None]

    return AdvanceReport(
        merchant=merchant.slug,
        previous=previous,
        now=to,
        steps=len(stops),
        renewed=targets("subscription.renewed"),
        canceled=targets("subscription.canceled"),
        resumed=targets("subscription.resumed"),
        invoices=targets("invoice.finalized"),
        payments_succeeded=targets("invoice.paid"),
        payments_failed=targets("invoice.payment_failed"),
        tasks_run=tasks_run,
        webhooks_queued=int(queued[0]["n"]),
        events=events,
    )
