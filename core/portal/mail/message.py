"""Build the MIME message of a merchant's email: plain text and HTML alternatives."""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid

from portal.tenancy.models import MerchantView


def _one_line(value: str) -> str:
    """``value`` with every run of whitespace (line breaks included) folded to one space."""
    return " ".join(value.split())


def _mailbox(addr_spec: str, display_name: str = "") -> Address:
    """One mailbox; ``ValueError`` naming the address when it is not a plain valid one."""
    try:
        return Address(display_name=_one_line(display_name), addr_spec=addr_spec.strip())
    except (ValueError, IndexError) as exc:  # IndexError: the parser on an empty or truncated address
        raise ValueError(f"not a valid email address: {addr_spec!r}") from exc


def compose(*, merchant: MerchantView, to: str, subject: str, text: str, html: str, mail_from: str) -> EmailMessage:
    """A ``multipart/alternative`` message from ``merchant`` to ``to``.

    The header sender is ``mail_from`` with the merchant's name as display name; replies go
    to the merchant's support address when it has one. Raises ``ValueError`` on an address
    that is not a single valid mailbox.
    """
    message = EmailMessage()
    message["Subject"] = _one_line(subject)
    sender = _mailbox(mail_from, merchant.name)
    message["From"] = sender
    message["To"] = _mailbox(to)
    if merchant.brand.support_email:
        message["Reply-To"] = _mailbox(merchant.brand.support_email, merchant.name)
    message["Date"] = datetime.now(UTC)
    message["Message-ID"] = make_msgid(domain=sender.domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
