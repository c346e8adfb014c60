"""A webhook receiver on loopback that verifies Standard Webhooks signatures with the reference package.

The receiver answers as a test scripts it (``respond``); every request is kept, signed or not, and a
signature that does not verify with any of ``secrets`` is recorded in ``failures`` and answered 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Request:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    at: float = field(default_factory=time.time)

    @property
    def msg_id(self) -> str:
        return self.headers.get("webhook-id", "")


Reply = tuple[int, dict[str, str], bytes]
Responder = Callable[[Request], Awaitable[Reply]]


async def ok(_: Request) -> Reply:
    return 200, {}, b"ok"


class Receiver:
    """A tiny HTTP/1.1 server (keep-alive, Content-Length bodies) that verifies Standard Webhooks."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = list(secrets)
        self.requests: list[Request] = []
        self.failures: list[str] = []
        self.respond: Responder = ok
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def verify_with(self, secret: str, request: Request) -> bool:
        try:
            Webhook(secret).verify(request.body, request.headers, json_parse=False)
        except WebhookVerificationError:
            return False
        return True

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                verified = any(
                    self.verify_with(secret, Request(method, path, headers, body, False)) for secret in self.secrets
                )
                request = Request(method, path, headers, body, verified)
                if not verified:
                    self.failures.append(f"signature did not verify for {request.msg_id}")
                self.requests.append(request)
                self.arrived.set()
                status, reply_headers, reply = await self.respond(request) if verified else (400, {}, b"bad signature")
                head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(reply)}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in reply_headers.items())
                writer.write(head.encode("latin-1") + b"\r\n" + reply)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def ids(self) -> list[str]:
        return [request.msg_id for request in self.requests]

    def events(self) -> list[dict[str, Any]]:
        """The JSON bodies of the verified requests, in arrival order (a redelivery appears again)."""
        return [dict(json.loads(request.body)) for request in self.requests if request.verified]

    async def wait_for(self, predicate: Callable[[], bool], seconds: float, what: str | Callable[[], str]) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                described = what() if callable(what) else what
                raise AssertionError(f"timed out after {seconds:g} s waiting for {described}")
            await asyncio.sleep(0.05)

    async def wait_for_event(
        self, event_type: str, seconds: float = 10.0, *, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """The first verified event of ``event_type`` (matching ``where``), waiting up to ``seconds`` for it."""

        def matching() -> list[dict[str, Any]]:
            return [e for e in self.events() if e.get("type") == event_type and (where is None or where(e))]

        def described() -> str:
            got = [e.get("type") for e in self.events()]
            return f"a signed {event_type!r} event (got {got}; signature failures: {self.failures})"

        await self.wait_for(lambda: bool(matching()), seconds, described)
        return matching()[0]
