"""``Idempotency-Key`` on every write under ``/api/v1``, with Stripe's semantics.

A ``POST``, ``PATCH`` or ``DELETE`` that carries ``Idempotency-Key: <1 to 255 printable ASCII
characters>`` is run at most once per API key and key:

- the first request claims the key (a row in ``portal_idempotency_key``, committed before the
  handler runs) and, once answered, stores its status and body;
- the same key again with the same method, path and body answers the stored status and body
  (with ``Idempotent-Replayed: true``), without running the handler;
- the same key with another method, path or body answers 409 (``idempotency_key_reused``);
- while the first request still runs, a duplicate waits up to :data:`WAIT_SECONDS` for its answer,
  then answers 409 (``idempotency_key_in_use``);
- only completed answers below 500 are stored, and not those that refused the request before it
  ran (400, 401, 403, and schema-invalid bodies a route flags with :func:`mark_not_run`): after
  a 5xx or such a refusal the key is free again, so the call can be retried with it;
- keys are kept :data:`TTL` (24 hours) from their first use; a claim whose request never
  answered (its process died) is free again after :data:`ABANDONED`.

Bodies are compared as JSON (key order and spacing do not matter), else byte for byte. Keys are
scoped to the API key (stored as a SHA-256 of the API key's id and the idempotency key), so two
keys, or two merchants, never see each other's answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
from datetime import timedelta
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from portal.api.keys import ApiPrincipal, principal_for
from portal.db.engine import fetch, json_value, tenant_transaction
from portal.web.errors import PROBLEM_JSON
from portal.web.input_policy import read_body, replaying

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE"})
KEY_PATTERN = re.compile(r"^[\x20-\x7e]{1,255}$")
TTL = timedelta(hours=24)
ABANDONED = timedelta(minutes=10)
"""A claim older than this whose request never answered is taken over by the next request."""
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05
NOT_STORED = frozenset({400, 401, 403})
"""Statuses of requests refused before they ran: their answers are not kept, the key stays free."""
NOT_RUN_KEY = "portal_idempotency_not_run"
REPLAYED = b"idempotent-replayed"
KEPT_HEADERS = (b"content-type", b"location")
PRUNE_CHANCE = 0.01
"""Share of claims that also delete the ISO's expired keys (a few hundred at a time)."""


async def _conflict(send: Send, code: str, detail: str) -> None:
    """409 problem document: the key was used for another request, or its first request still runs."""
    body = msgspec.json.encode(
        {"type": "about:blank", "title": "Conflict", "status": 409, "detail": detail, "code": code}
    )
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 409, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def mark_not_run(scope: Scope) -> None:
    """Flag the request as refused before it ran (a schema-invalid body): its answer is not kept."""
    scope[NOT_RUN_KEY] = True  # type: ignore[literal-required]


def body_hash(body: bytes) -> str:
    """SHA-256 of the body as canonical JSON (sorted keys, no spacing), else of its bytes."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def key_hash(principal: ApiPrincipal, key: str) -> str:
    """The stored form of an idempotency key: scoped to the API key that sent it."""
    return hashlib.sha256(f"{principal.key_id}\n{key}".encode()).hexdigest()


def _header(scope: Scope, name: bytes) -> str | None:
    for header, value in scope.get("headers", ()):
        if header == name:
            return bytes(value).decode("latin-1")
    return None


def _bearer(scope: Scope) -> str | None:
    authorization = _header(scope, b"authorization") or ""
    scheme, _, secret = authorization.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


def _target(scope: Scope) -> str:
    query = scope.get("query_string", b"")
    return scope["path"] + ("?" + query.decode("latin-1") if query else "")


class _Claim(msgspec.Struct, kw_only=True):
    owned: bool
    method: str = ""
    path: str = ""
    body_hash: str = ""
    status_code: int | None = None
    response: dict[str, Any] | None = None


async def _claim(principal: ApiPrincipal, hashed: str, method: str, path: str, digest: str) -> _Claim:
    """Take the key, or read what holds it."""
    async with tenant_transaction(principal.iso_id):
        if random.random() < PRUNE_CHANCE:  # noqa: S311 - load spreading, not security
            await fetch(
                "DELETE FROM portal_idempotency_key WHERE ctid = ANY(ARRAY("
                "SELECT ctid FROM portal_idempotency_key WHERE created_at < now() - $1::interval LIMIT 500))",
                TTL,
            )
        await fetch(
            """
            DELETE FROM portal_idempotency_key
             WHERE key_hash = $1
               AND (created_at < now() - $2::interval OR (status_code IS NULL AND created_at < now() - $3::interval))
            """,
            hashed,
            TTL,
            ABANDONED,
        )
        inserted = await fetch(
            """
            INSERT INTO portal_idempotency_key (iso_id, merchant_id, key_hash, method, path, body_hash)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING key_hash
            """,
            principal.iso_id,
            principal.merchant_id,
            hashed,
            method,
            path,
            digest,
        )
        if inserted:
            return _Claim(owned=True)
        rows = await fetch(
            "SELECT method, path, body_hash, status_code, response FROM portal_idempotency_key WHERE key_hash = $1",
            hashed,
        )
    if not rows:  # gone between the two statements (expired and deleted): try again
        return _Claim(owned=False, status_code=-1)
    row = rows[0]
    return _Claim(
        owned=False,
        method=row["method"],
        path=row["path"],
        body_hash=row["body_hash"],
        status_code=row["status_code"],
        response=json_value(row["response"]) if row["response"] is not None else None,
    )


async def _finish(principal: ApiPrincipal, hashed: str, status: int | None, response: dict[str, Any] | None) -> None:
    """Store the answer, or free the key when it is not to be kept."""
    async with tenant_transaction(principal.iso_id):
        if status is None or response is None:
            await fetch(
                "DELETE FROM portal_idempotency_key WHERE key_hash = $1 AND status_code IS NULL",
                hashed,
            )
        else:
            await fetch(
                "UPDATE portal_idempotency_key SET status_code = $2, response = $3::jsonb "
                "WHERE key_hash = $1 AND status_code IS NULL",
                hashed,
                status,
                json.dumps(response),
            )


async def _replay(send: Send, stored: _Claim) -> None:
    response = stored.response or {}
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.get("headers", [])]
    headers.append((REPLAYED, b"true"))
    body = str(response.get("body", "")).encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": int(stored.status_code or 200), "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class IdempotencyMiddleware(ASGIMiddleware):
    """Apply ``Idempotency-Key`` to the writes of the routes it wraps (the API router's)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the write once per key; replay or refuse duplicates."""
        if scope["type"] != ScopeType.HTTP or scope.get("method") not in WRITE_METHODS:
            await next_app(scope, receive, send)
            return
        key = _header(scope, HEADER.encode())
        if key is None:
            await next_app(scope, receive, send)
            return
        if not KEY_PATTERN.fullmatch(key):
            raise ClientException(
                detail="'Idempotency-Key' is 1 to 255 printable ASCII characters.",
                extra=[{"key": "Idempotency-Key", "source": "header", "message": "is not a valid key"}],
            )
        secret = _bearer(scope)
        principal = await principal_for(secret) if secret else None
        if principal is None:  # the handler answers 401; nothing to bind the key to
            await next_app(scope, receive, send)
            return
        handler = scope.get("route_handler")
        limit = handler.resolve_request_max_body_size() if isinstance(handler, HTTPRouteHandler) else None
        body, gone = await read_body(receive, limit)
        if gone:
            return
        receive = replaying(body, receive)
        method, path, digest = scope["method"], _target(scope), body_hash(body)
        hashed = key_hash(principal, key)
        waited = 0.0
        while True:
            claim = await _claim(principal, hashed, method, path, digest)
            if claim.owned:
                break
            if claim.status_code == -1:
                continue
            if (claim.method, claim.path, claim.body_hash) != (method, path, digest):
                await _conflict(
                    send,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with another request (method, path or body); use a new key.",
                )
                return
            if claim.status_code is not None:
                await _replay(send, claim)
                return
            if waited >= WAIT_SECONDS:
                await _conflict(
                    send,
                    "idempotency_key_in_use",
                    "A request with this Idempotency-Key is still being processed; retry later.",
                )
                return
            await asyncio.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
        await self._run_once(scope, receive, send, next_app, principal, hashed)

    async def _run_once(
        self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp, principal: ApiPrincipal, hashed: str
    ) -> None:
        status: int | None = None
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        complete = False

        async def capture(message: Message) -> None:
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(
                    (bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1"))
                    for name, value in message.get("headers", [])
                    if bytes(name).lower() in KEPT_HEADERS
                )
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                complete = not message.get("more_body", False)
            await send(message)

        stored: dict[str, Any] | None = None
        try:
            await next_app(scope, receive, capture)
            keep = complete and status is not None and status < 500 and status not in NOT_STORED
            if keep and not scope.get(NOT_RUN_KEY):
                try:
                    stored = {"headers": headers, "body": b"".join(chunks).decode()}
                except UnicodeDecodeError:
                    stored = None
        finally:
            try:
                await asyncio.shield(_finish(principal, hashed, status if stored else None, stored))
            except Exception:
                log.exception("could not record the answer to an idempotent request")
