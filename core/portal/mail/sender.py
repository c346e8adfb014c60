"""Deliver messages to the configured SMTP server."""

from __future__ import annotations

import logging
import ssl
from email.headerregistry import Address
from email.message import EmailMessage

import aiosmtplib

from portal.config import ENV_PREFIX, Settings
from portal.metrics import EMAILS

log = logging.getLogger(__name__)

_SECURITY_HINT = f"check {ENV_PREFIX}SMTP_SECURITY (tls: implicit TLS, usually port 465; starttls: usually 587)"


class MailError(Exception):
    """A message could not be handed to the mail server; the message says why."""


def _domains(message: EmailMessage) -> str:
    """The recipients' domains: enough to trace a delivery without logging addresses."""
    domains: set[str] = set()
    for name in ("To", "Cc", "Bcc"):
        header = message.get(name)
        addresses: tuple[Address, ...] = getattr(header, "addresses", ())
        domains.update(address.domain.lower() for address in addresses if address.domain)
    return ", ".join(sorted(domains)) or "(none)"


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


class Mailer:
    """Sends messages over SMTP with the ``smtp_*`` settings, one connection per message."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.username = settings.smtp_username
        self.password = settings.smtp_password
        self.timeout = settings.smtp_timeout
        self.mail_from = settings.mail_from

    @property
    def server(self) -> str:
        """``host:port`` of the mail server, for messages."""
        return f"{self.host}:{self.port}"

    async def send(self, message: EmailMessage) -> None:
        """Hand ``message`` to the mail server; raise :class:`MailError` when it does not take it.

        The envelope sender is ``mail_from``; the recipients are those of the message headers.
        """
        domains = _domains(message)
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=self.mail_from,
                hostname=self.host,
                port=self.port,
                use_tls=self.security == "tls",
                start_tls=self.security == "starttls",
                username=self.username,
                password=self.password if self.username is not None else None,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            EMAILS.labels(outcome="failed").inc()
            raise MailError(self._describe(exc)) from exc
        if refused:
            EMAILS.labels(outcome="failed").inc()
            replies = "; ".join(f"{response.code} {response.message}" for response in refused.values())
            raise MailError(f"the mail server {self.server} refused {len(refused)} recipient(s): {replies}")
        EMAILS.labels(outcome="sent").inc()
        log.info("mail sent to %s: %s", domains, message.get("Subject", ""))

    def _describe(self, exc: aiosmtplib.SMTPException | OSError | ValueError) -> str:
        """A sentence an operator can act on, naming the server and never the message body."""
        server = self.server
        match exc:
            case aiosmtplib.SMTPConnectTimeoutError():
                return f"timed out connecting to the mail server {server} after {self.timeout:g} s"
            case aiosmtplib.SMTPConnectResponseError():
                return f"the mail server {server} refused the connection: {_reply(exc)}"
            case aiosmtplib.SMTPConnectError() if isinstance(exc.__cause__, ssl.SSLError):
                return f"TLS with the mail server {server} failed: {exc.__cause__}; {_SECURITY_HINT}"
            case aiosmtplib.SMTPConnectError():
                return f"cannot connect to the mail server {server}: {exc.__cause__ or exc.message}"
            case aiosmtplib.SMTPTimeoutError():
                return f"the mail server {server} did not answer within {self.timeout:g} s"
            case aiosmtplib.SMTPAuthenticationError():
                return f"the mail server {server} rejected the SMTP username or password: {_reply(exc)}"
            case aiosmtplib.SMTPSenderRefused():
                return f"the mail server {server} refused the sender {exc.sender}: {_reply(exc)}"
            case aiosmtplib.SMTPRecipientsRefused():
                replies = "; ".join(_reply(refused) for refused in exc.recipients)
                return f"the mail server {server} refused the recipient(s): {replies}"
            case aiosmtplib.SMTPRecipientRefused():
                return f"the mail server {server} refused the recipient: {_reply(exc)}"
            case aiosmtplib.SMTPDataError():
                return f"the mail server {server} refused the message: {_reply(exc)}"
            case aiosmtplib.SMTPResponseException():
                return f"the mail server {server} answered with an error: {_reply(exc)}"
            case aiosmtplib.SMTPServerDisconnected():
                return f"the mail server {server} closed the connection unexpectedly: {exc.message}"
            case aiosmtplib.SMTPException() if "TLS" in exc.message:
                return f"sending through the mail server {server} failed: {exc.message.rstrip('.')}; {_SECURITY_HINT}"
            case aiosmtplib.SMTPException():
                return f"sending through the mail server {server} failed: {exc.message}"
            case ValueError():
                return f"the message cannot be sent: {exc}"
            case ssl.SSLError():
                return f"TLS with the mail server {server} failed: {exc}; {_SECURITY_HINT}"
        return f"connection to the mail server {server} failed: {exc}"
