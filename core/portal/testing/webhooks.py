"""A webhook receiver on loopback that verifies Standard Webhooks signatures, and delivery in-process.

Deliveries are sent by the worker in production; in tests :meth:`WebhookReceiver.wait_for` runs
the same delivery code (:func:`portal.events.delivery.deliver_due`) for the ISOs of the endpoints
pointing at the receiver, until the event arrives or the timeout passes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest_asyncio

from portal.db.engine import fetch, tenant_transaction
from portal.events.delivery import deliver_due
from portal.platform import Platform

TOLERANCE = 300
"""Seconds a ``webhook-timestamp`` may be off the receiver's clock (the specification's default)."""


class SignatureError(ValueError):
    """A delivery whose signature, id or timestamp does not verify."""


def verify_signature(secrets: list[str], headers: dict[str, str], body: bytes, *, now: float | None = None) -> None:
    """Check a delivery as the Standard Webhooks specification says; raise :class:`SignatureError`.

    The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; each ``v1,<base64>``
    entry of ``webhook-signature`` is an HMAC-SHA256 of it keyed with a secret's bytes (the
    base64 after ``whsec_``). One matching entry for one of ``secrets`` is enough.
    """
    msg_id, stamp, signatures = (
        headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not (msg_id and stamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = int(stamp)
    except ValueError as exc:
        raise SignatureError(f"webhook-timestamp {stamp!r} is not a number") from exc
    if abs((time.time() if now is None else now) - sent) > TOLERANCE:
        raise SignatureError(f"webhook-timestamp {sent} is too far from now")
    content = f"{msg_id}.{sent}.".encode() + body
    expected = set()
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected.add(base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode())
    offered = [entry.partition(",")[2] for entry in signatures.split() if entry.startswith("v1,")]
    if not any(hmac.compare_digest(candidate, signature) for candidate in expected for signature in offered):
        raise SignatureError(f"no signature of {msg_id} matches the endpoint's secret")


@dataclass(frozen=True)
class Delivery:
    """One request the receiver got; ``payload`` is the parsed body of a verified delivery."""

    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str = ""

    @property
    def id(self) -> str:
        """The ``webhook-id`` header (the delivery's message id)."""
        return self.headers.get("webhook-id", "")

    @property
    def payload(self) -> dict[str, Any]:
        """The event as JSON (``type``, ``timestamp``, ``data``)."""
        return dict(json.loads(self.body))


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that keeps every delivery and verifies its signature.

    Endpoints are pointed at it with ``await merchant.webhook_endpoint(receiver)``, which adds the
    endpoint's secret here. Unverified requests are answered 400 and kept in :attr:`deliveries`.
    """

    __test__ = False

    platform: Platform
    secrets: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    iso_ids: set[str] = field(default_factory=set)
    endpoint_ids: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """Where endpoints point."""
        return f"http://127.0.0.1:{self.port}/webhooks"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and retire the endpoints that point here (their pending deliveries too)."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        for iso_id in self.iso_ids:
            async with tenant_transaction(iso_id):
                await fetch(
                    "UPDATE portal_webhook_endpoint SET enabled = false WHERE id = ANY($1::text[])", self.endpoint_ids
                )
                await fetch(
                    "UPDATE portal_webhook_delivery SET status = 'cancelled', next_attempt_at = NULL "
                    "WHERE endpoint_id = ANY($1::text[]) AND status = 'pending'",
                    self.endpoint_ids,
                )

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The verified events received so far (of ``event_type``), in arrival order."""
        found = [delivery.payload for delivery in self.deliveries if delivery.verified]
        return [event for event in found if event_type is None or event.get("type") == event_type]

    @property
    def failures(self) -> list[str]:
        """Why each unverified request was refused."""
        return [delivery.error for delivery in self.deliveries if not delivery.verified]

    async def deliver(self) -> int:
        """Send the deliveries due to the endpoints of this receiver's ISOs now; how many were claimed."""
        sender = copy.copy(self.platform)  # the same platform, allowed to send to this loopback receiver
        sender.settings = msgspec.structs.replace(self.platform.settings, webhook_allow_private=True)
        return sum([await deliver_due(sender, iso_id) for iso_id in sorted(self.iso_ids)])

    async def wait_for(
        self,
        event_type: str,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for the deliveries it drives, not a cancellation
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The first verified event of ``event_type`` (for which ``where`` holds), delivering until it arrives."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [event for event in self.events(event_type) if where is None or where(event)]
            if matching:
                return matching[0]
            if time.monotonic() > deadline:
                got = [event.get("type") for event in self.events()]
                raise AssertionError(
                    f"no signed {event_type!r} event within {timeout:g} s (got {got}; refused: {self.failures})"
                )
            if not await self.deliver():
                await asyncio.sleep(0.05)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                error = ""
                if not line.startswith(b"POST "):
                    error = f"not a POST: {line.decode('latin-1').strip()}"
                else:
                    try:
                        verify_signature(self.secrets, headers, body)
                    except SignatureError as exc:
                        error = str(exc)
                self.deliveries.append(Delivery(headers, body, not error, error))
                status = b"400 Bad Request" if error else b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


@pytest_asyncio.fixture(loop_scope="session")
async def webhook_receiver(portal_platform: Platform) -> AsyncIterator[WebhookReceiver]:
    """A started :class:`WebhookReceiver`; its endpoints are retired after the test."""
    receiver = WebhookReceiver(portal_platform)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
