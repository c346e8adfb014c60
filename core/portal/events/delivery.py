"""Webhook delivery (Standard Webhooks): claim due messages, send them signed, record the outcome.

Postgres holds the retry state. A worker claims due rows of one ISO with ``FOR UPDATE SKIP
LOCKED`` in a short transaction that also sets a lease (``next_attempt_at`` pushed past the
longest the batch can take) and counts the attempt, then sends outside any transaction and
records each outcome in a transaction of its own. A worker that dies mid-send leaves the row
pending; once the lease runs out another worker sends it again (the only duplicates). An
outcome is applied only by the worker still holding the claim (same ``attempts``).

Every attempt applies the destination policy (:mod:`portal.events.destinations`) to the
endpoint's URL, resolves its host once (the resolver is a parameter of :func:`deliver_due`) and
sends the request to an address it checked, with the host name as ``Host`` and as the TLS server
name, so nothing looks the name up a second time. Each host name has its own connections
(:mod:`portal.events.connections`).

Outcomes: 2xx succeeds; 410 disables the endpoint and cancels the message; 429 and 503 honour
``Retry-After`` (capped at 24 h); everything else, 3xx included (redirects are never
followed), timeouts, connection errors and refused destinations, retries per :data:`SCHEDULE`
and fails after the last attempt. An endpoint failing for ``webhook_disable_after_days`` is
disabled and the merchant's support address emailed (:mod:`portal.events.notify`). Payloads and
secrets are never logged. Replays are :mod:`portal.events.replay`'s; the worker's lane that calls
:func:`deliver_due` is in :mod:`portal.tasks.worker`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING

import httpx
import msgspec

from portal.db.engine import fetch, tenant_transaction
from portal.events.connections import CONCURRENCY, Connections, loop_connections
from portal.events.destinations import (
    Address,
    Destination,
    DestinationRefusedError,
    Resolver,
    pinned_request,
    resolve_destination,
)
from portal.events.notify import notify_endpoint_disabled
from portal.events.signing import signature_header
from portal.ids import new_id
from portal.metrics import WEBHOOK_DELIVERIES
from portal.tasks.durable import persist

if TYPE_CHECKING:
    from portal.config import Settings
    from portal.platform import Platform

log = logging.getLogger(__name__)

SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
"""Delays before attempts 2 to 10 (the first attempt is immediate); after the 10th: ``failed``."""
MAX_ATTEMPTS = len(SCHEDULE) + 1
BATCH = 5 * CONCURRENCY
"""Messages one call claims: five waves, so a lease (waves times the timeout) stays near a minute."""
LEASE_MARGIN = timedelta(seconds=5)
"""Added to the longest a claimed batch can take, for recording and scheduling delays."""
RETRY_AFTER_CAP = timedelta(hours=24)
EXCERPT_BYTES = 2048
USER_AGENT = "portal-webhooks/1"


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed delivery and what sending it needs."""

    id: str
    merchant_id: str
    endpoint_id: str
    payload: str
    attempts: int
    url: str
    secrets: tuple[str, ...]


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one HTTP attempt produced."""

    status_code: int | None = None
    latency_ms: int = 0
    excerpt: str | None = None
    error: str | None = None
    retry_after: timedelta | None = None


# --- claiming -------------------------------------------------------------------------------


def lease_for(settings: Settings, limit: int) -> timedelta:
    """How long a claim holds: every wave of :data:`CONCURRENCY` sends may take the full timeout."""
    waves = max(1, math.ceil(limit / CONCURRENCY))
    return timedelta(seconds=settings.webhook_timeout * waves) + LEASE_MARGIN


async def _claim(settings: Settings, iso_id: str, limit: int, worker_id: str | None) -> list[Claimed]:
    async with tenant_transaction(iso_id):
        rows = await fetch(
            """
            WITH due AS (
                SELECT id FROM portal_webhook_delivery
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at
                 LIMIT $1
                   FOR UPDATE SKIP LOCKED)
            UPDATE portal_webhook_delivery d
               SET attempts = d.attempts + 1, next_attempt_at = now() + $2::interval, claimed_by = $3
              FROM due, portal_webhook_endpoint e
             WHERE d.id = due.id AND e.id = d.endpoint_id
            RETURNING d.id, d.merchant_id, d.endpoint_id, d.payload, d.attempts, e.url, e.enabled, e.secret,
                      CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret
            """,
            limit,
            lease_for(settings, limit),
            worker_id,
        )
        disabled = [row["id"] for row in rows if not row["enabled"]]
        if disabled:
            await fetch(
                "UPDATE portal_webhook_delivery SET status = 'cancelled', next_attempt_at = NULL, claimed_by = NULL, "
                "last_error = 'endpoint disabled' WHERE id = ANY($1::text[])",
                disabled,
            )
    return [
        Claimed(
            id=row["id"],
            merchant_id=row["merchant_id"],
            endpoint_id=row["endpoint_id"],
            payload=row["payload"],
            attempts=row["attempts"],
            url=row["url"],
            secrets=tuple(s for s in (row["secret"], row["previous_secret"]) if s),
        )
        for row in rows
        if row["enabled"]
    ]


# --- sending --------------------------------------------------------------------------------


def _text(value: str) -> str:
    """``value`` storable in a PostgreSQL text column (which refuses NUL characters)."""
    return value.replace("\x00", "\ufffd")


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """``Retry-After`` as a delay: delta-seconds or an HTTP date; ``None`` when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - (now or datetime.now(UTC)))


async def _open(
    client: httpx.AsyncClient,
    destination: Destination,
    addresses: list[Address],
    *,
    content: bytes,
    headers: dict[str, str],
    seconds: float,
) -> httpx.Response:
    """Send to the checked addresses in turn until one accepts the connection; the response streams."""
    *others, last = addresses
    for address in others:
        request = pinned_request(destination, address, content=content, headers=headers, timeout=seconds)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            log.info("webhook destination %s: no connection to %s (%s), trying the next address", destination.host,
                     address, exc)  # fmt: skip
    request = pinned_request(destination, last, content=content, headers=headers, timeout=seconds)
    return await client.send(request, stream=True)


async def _send(connections: Connections, settings: Settings, message: Claimed, resolve: Resolver) -> Outcome:
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(settings.webhook_timeout):
            destination, addresses = await resolve_destination(
                message.url, allow_private=settings.webhook_allow_private, resolve=resolve
            )
            timestamp = int(time.time())
            headers = {
                "webhook-id": message.id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature_header(list(message.secrets), message.id, timestamp, message.payload),
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            }
            async with connections.client(destination.host) as client:
                response = await _open(
                    client,
                    destination,
                    addresses,
                    content=message.payload.encode(),
                    headers=headers,
                    seconds=settings.webhook_timeout,
                )
                try:
                    excerpt = bytearray()
                    async for chunk in response.aiter_bytes():
                        excerpt += chunk
                        if len(excerpt) >= EXCERPT_BYTES:
                            break
                finally:
                    await response.aclose()
                retry_after = (
                    parse_retry_after(response.headers.get("retry-after"))
                    if response.status_code in (429, 503)
                    else None
                )
                return Outcome(
                    status_code=response.status_code,
                    latency_ms=elapsed(),
                    excerpt=_text(bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", "replace")),
                    retry_after=retry_after,
                )
    except DestinationRefusedError as exc:
        return Outcome(latency_ms=elapsed(), error=_text(str(exc)[:2000]))
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(latency_ms=elapsed(), error=f"timed out after {settings.webhook_timeout:g} s")
    except (httpx.HTTPError, OSError) as exc:
        return Outcome(latency_ms=elapsed(), error=_text(f"{type(exc).__name__}: {exc}"[:2000]))


# --- recording ------------------------------------------------------------------------------


def _retry_delay(attempts: int, outcome: Outcome) -> timedelta | None:
    """Delay before the next attempt after failed attempt number ``attempts``; ``None``: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = SCHEDULE[max(attempts, 1) - 1]
    if outcome.retry_after is not None:
        delay = min(max(delay, outcome.retry_after), RETRY_AFTER_CAP)
    return delay


def _describe_failure(outcome: Outcome) -> str:
    if outcome.error is not None:
        return outcome.error
    code = outcome.status_code
    if code is not None and 300 <= code < 400:
        return f"HTTP {code}: redirects are not followed"
    return f"HTTP {code}"


async def _record_failure(platform: Platform, iso_id: str, message: Claimed, outcome: Outcome) -> None:
    """Record a failed attempt: retry later, give up, or disable the endpoint (410, failing too long)."""
    settings = platform.settings
    code = outcome.status_code
    failure = _describe_failure(outcome)
    notify: tuple[str, str] | None = None
    async with tenant_transaction(iso_id):
        await fetch(
            "INSERT INTO portal_webhook_attempt (id, iso_id, delivery_id, status_code, latency_ms, response_excerpt, "
            "error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            new_id("wha"), iso_id, message.id, code, outcome.latency_ms, outcome.excerpt, outcome.error,
        )  # fmt: skip
        claim = "id = $1 AND status = 'pending' AND attempts = $2"
        if code == 410:
            reason = "the endpoint answered 410 Gone"
            owned = await fetch(
                f"UPDATE portal_webhook_delivery SET status = 'cancelled', next_attempt_at = NULL, last_status = $3, "
                f"last_error = $4, claimed_by = NULL WHERE {claim} RETURNING id",
                message.id, message.attempts, code, reason,
            )  # fmt: skip
            WEBHOOK_DELIVERIES.labels(outcome="cancelled").inc()
            if owned:
                await _disable(message.endpoint_id, reason)
        else:
            delay = _retry_delay(message.attempts, outcome)
            WEBHOOK_DELIVERIES.labels(outcome="failed" if delay is None else "retrying").inc()
            # A NULL delay (no attempts left) fails the message and leaves no next attempt.
            owned = await fetch(
                "UPDATE portal_webhook_delivery SET status = CASE WHEN $3::interval IS NULL THEN 'failed' "
                "ELSE 'pending' END, next_attempt_at = now() + $3::interval, claimed_by = NULL, "
                f"last_status = $4, last_error = $5 WHERE {claim} RETURNING id",
                message.id, message.attempts, delay, code, failure[:2000],
            )  # fmt: skip
            if owned:
                endpoint = await fetch(
                    """
                    UPDATE portal_webhook_endpoint SET failing_since = coalesce(failing_since, now())
                     WHERE id = $1
                    RETURNING enabled, url, failing_since <= now() - $2::interval AS overdue
                    """,
                    message.endpoint_id,
                    timedelta(days=settings.webhook_disable_after_days),
                )
                if endpoint and endpoint[0]["enabled"] and endpoint[0]["overdue"]:
                    reason = f"failing for more than {settings.webhook_disable_after_days:g} days (last: {failure})"
                    await _disable(message.endpoint_id, reason[:1000])
                    await fetch(
                        "UPDATE portal_webhook_delivery SET status = 'cancelled', next_attempt_at = NULL WHERE id = $1",
                        message.id,
                    )
                    notify = (endpoint[0]["url"], reason)
        if not owned:
            log.warning(
                "webhook %s: outcome of attempt %s not applied, the claim was lost", message.id, message.attempts
            )
    log.warning(
        "webhook %s to endpoint %s failed on attempt %s: %s", message.id, message.endpoint_id, message.attempts, failure
    )
    if notify is not None:
        await notify_endpoint_disabled(platform, iso_id, message.merchant_id, notify[0], notify[1])


async def _disable(endpoint_id: str, reason: str) -> None:
    await fetch(
        "UPDATE portal_webhook_endpoint SET enabled = false, disabled_reason = $2, updated_at = now() "
        "WHERE id = $1 AND enabled",
        endpoint_id,
        reason,
    )
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)


# --- public API -----------------------------------------------------------------------------


async def deliver_due(
    platform: Platform,
    iso_id: str,
    limit: int = BATCH,
    *,
    resolve: Resolver | None = None,
    connections: Connections | None = None,
    worker_id: str | None = None,
    stopping: asyncio.Event | None = None,
) -> int:
    """Claim up to ``limit`` due messages of one ISO, send them and record each outcome.

    ``resolve`` looks up endpoint host names, once per attempt (``platform.resolve`` by default);
    ``connections`` defaults to this event loop's, which keep connections alive across batches.
    ``worker_id`` is recorded on the claims; once ``stopping`` is set, claimed messages not yet
    sent are left unsent for the worker to hand back. Returns how many messages were claimed.
    """
    settings = platform.settings
    claimed = await _claim(settings, iso_id, limit, worker_id)
    if not claimed:
        return 0
    pool = connections if connections is not None else loop_connections()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(message: Claimed) -> tuple[Claimed, Outcome | None]:
        async with gate:
            if stopping is not None and stopping.is_set():
                return message, None  # not sent: handed back when the worker stops
            return message, await _send(pool, settings, message, resolve or platform.resolve)

    # Sends keep flowing while finished ones are recorded, a few at a time, well within the lease.
    finished: list[tuple[Claimed, Outcome]] = []
    for next_done in asyncio.as_completed([one(message) for message in claimed]):
        message, outcome = await next_done
        if outcome is None:
            WEBHOOK_DELIVERIES.labels(outcome="released").inc()
            continue
        finished.append((message, outcome))
        if len(finished) >= CONCURRENCY:
            await _record_wave(platform, iso_id, finished)
            finished = []
    if finished:
        await _record_wave(platform, iso_id, finished)
    return len(claimed)


async def _record_wave(platform: Platform, iso_id: str, sent: list[tuple[Claimed, Outcome]]) -> None:
    delivered = [(m, o) for m, o in sent if _succeeded(o)]
    failed = [(m, o) for m, o in sent if not _succeeded(o)]
    WEBHOOK_DELIVERIES.labels(outcome="succeeded").inc(len(delivered))
    try:
        await persist(lambda: _record_successes(iso_id, delivered), f"{len(delivered)} delivered webhooks")
    except Exception:
        log.exception("could not record %s delivered webhooks; their leases will retry them", len(delivered))
    for message, outcome in failed:
        try:
            await persist(
                partial(_record_failure, platform, iso_id, message, outcome), f"the outcome of webhook {message.id}"
            )
        except Exception:
            log.exception("could not record the outcome of webhook %s; its lease will retry it", message.id)


def _succeeded(outcome: Outcome) -> bool:
    return outcome.status_code is not None and 200 <= outcome.status_code < 300


async def _record_successes(iso_id: str, delivered: list[tuple[Claimed, Outcome]]) -> None:
    """Record every 2xx of a batch in one transaction (the common case, kept cheap)."""
    if not delivered:
        return
    # The rows are found by primary key; "still pending" is spelled as none of the other statuses
    # (the table's check allows four) so that no partial index on pending rows matches: with
    # statistics from before a burst, the planner read every pending delivery through one.
    async with tenant_transaction(iso_id):
        await fetch(
            """
            INSERT INTO portal_webhook_attempt (id, iso_id, delivery_id, status_code, latency_ms, response_excerpt)
            SELECT a.id, $1, a.delivery_id, a.code, a.latency, a.excerpt
              FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::text[])
                   AS a(id, delivery_id, code, latency, excerpt)
            """,
            iso_id,
            [new_id("wha") for _ in delivered],
            [message.id for message, _ in delivered],
            [outcome.status_code for _, outcome in delivered],
            [outcome.latency_ms for _, outcome in delivered],
            [outcome.excerpt for _, outcome in delivered],
        )
        owned = await fetch(
            """
            UPDATE portal_webhook_delivery d
               SET status = 'succeeded', delivered_at = now(), next_attempt_at = NULL, claimed_by = NULL,
                   last_status = u.code, last_error = NULL
              FROM unnest($1::text[], $2::int[], $3::int[]) AS u(id, attempts, code)
             WHERE d.id = ANY($1::text[]) AND d.id = u.id AND d.attempts = u.attempts
               AND d.status <> ALL ('{succeeded,failed,cancelled}'::text[])
            RETURNING d.id, d.endpoint_id
            """,
            [message.id for message, _ in delivered],
            [message.attempts for message, _ in delivered],
            [outcome.status_code for _, outcome in delivered],
        )
        await fetch(
            "UPDATE portal_webhook_endpoint SET failing_since = NULL "
            "WHERE id = ANY($1::text[]) AND failing_since IS NOT NULL",
            sorted({row["endpoint_id"] for row in owned}),
        )
    if len(owned) < len(delivered):
        log.warning("%s delivered webhooks were not recorded: their claims were lost", len(delivered) - len(owned))
    log.info("%s webhooks delivered", len(owned))


__all__: list[str] = [
    "BATCH",
    "MAX_ATTEMPTS",
    "SCHEDULE",
    "deliver_due",
    "lease_for",
    "parse_retry_after",
]
