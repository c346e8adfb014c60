"""Demo mode's mail server: an in-process SMTP listener that keeps what it receives in memory.

It runs in the current event loop (no thread), listens on ``127.0.0.1`` on a free port and
accepts any sender, recipient and credentials. Only the most recent messages are kept.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

MAX_MESSAGES = 200
_PARSER = BytesParser(_class=EmailMessage, policy=policy.default)


@dataclass(frozen=True, slots=True, kw_only=True)
class CaughtMail:
    """One message the catcher received."""

    index: int
    """Sequence number, stable while the message is kept (the first message is 1)."""
    received: datetime
    """When it arrived (UTC)."""
    envelope_from: str
    envelope_to: tuple[str, ...]
    message: EmailMessage


class _Handler:
    """aiosmtpd handler: parse each message and hand it to the catcher."""

    def __init__(self, catcher: MailCatcher) -> None:
        self._catcher = catcher

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content
        if content is None:
            raw = envelope.content
            content = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else (raw or b"")
        self._catcher.keep(_PARSER.parsebytes(content), envelope.mail_from or "", tuple(envelope.rcpt_tos))
        return "250 OK: message caught"


def _accept_any(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True)


class MailCatcher:
    """An SMTP server for demo mode that keeps the last :data:`MAX_MESSAGES` messages."""

    def __init__(self, host: str = "127.0.0.1", max_messages: int = MAX_MESSAGES) -> None:
        self.host = host
        self.port: int | None = None
        self._kept: deque[CaughtMail] = deque(maxlen=max_messages)
        self._sequence = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._connections: weakref.WeakSet[asyncio.Protocol] = weakref.WeakSet()
        self._waiters: set[asyncio.Future[None]] = set()
        self.last_index = 0
        """Sequence number of the newest message received so far (0 before the first)."""

    async def start(self) -> int:
        """Listen on a free port of ``host`` in the running event loop; return the port."""
        if self._server is not None:
            raise RuntimeError("the mail catcher is already running")
        try:
            from aiosmtpd.smtp import SMTP
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise RuntimeError("the mail catcher needs aiosmtpd, a dependency of portal-core") from exc

        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        def protocol() -> SMTP:
            connection = SMTP(
                handler,
                hostname="localhost",  # the default looks up the FQDN, a blocking call
                enable_SMTPUTF8=True,
                authenticator=_accept_any,
                auth_require_tls=False,
                loop=loop,
            )
            self._connections.add(connection)
            return connection

        self._server = await loop.create_server(protocol, host=self.host, port=0)
        port: int = self._server.sockets[0].getsockname()[1]
        self.port = port
        return port

    async def stop(self) -> None:
        """Stop listening and close open connections; kept messages stay readable."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for connection in list(self._connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
        await server.wait_closed()
        await asyncio.sleep(0)  # let the closed connections' handler tasks finish cancelling
        self.port = None

    def keep(self, message: EmailMessage, envelope_from: str, envelope_to: tuple[str, ...]) -> CaughtMail:
        """Store a received message (the oldest falls out beyond the limit)."""
        caught = CaughtMail(
            index=next(self._sequence),
            received=datetime.now(UTC),
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            message=message,
        )
        self._kept.append(caught)
        self.last_index = caught.index
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        return caught

    async def wait_for(
        self, match: Callable[[CaughtMail], bool] | None = None, *, after: int = 0, seconds: float = 10.0
    ) -> CaughtMail:
        """The oldest kept message numbered above ``after`` that ``match`` accepts, waiting for it.

        Raises :class:`TimeoutError` when no such message arrives within ``seconds``; it
        never falls back to another message. Take ``after`` from :attr:`last_index` before the
        action that sends the mail, so earlier messages do not count.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            for caught in self._kept:
                if caught.index > after and (match is None or match(caught)):
                    return caught
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(c.index, c.envelope_to, str(c.message["Subject"])) for c in self._kept if c.index > after]
                raise TimeoutError(f"no matching mail arrived within {seconds:g} s (arrived after #{after}: {seen})")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                self._waiters.discard(waiter)

    @property
    def messages(self) -> list[CaughtMail]:
        """The kept messages, newest first."""
        return list(reversed(self._kept))

    def message(self, index: int) -> CaughtMail | None:
        """The kept message with sequence number ``index``, or ``None`` when there is none."""
        for caught in self._kept:
            if caught.index == index:
                return caught
        return None
