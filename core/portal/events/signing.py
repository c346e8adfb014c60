"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256>`` of ``{msg_id}.{timestamp}.{body}``.

A secret is ``whsec_`` followed by the base64 of the key bytes; the HMAC key is the decoded
part after the prefix. During a rotation a message carries one signature per secret,
separated by spaces, so receivers verify with either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
SECRET_BYTES = 24


class InvalidSecretError(ValueError):
    """The secret is not ``whsec_`` followed by non-empty base64."""


def _key(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError as exc:
        raise InvalidSecretError("a webhook secret is whsec_ followed by base64") from exc
    if not key:
        raise InvalidSecretError("a webhook secret may not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``v1,<base64>`` signature of one message with one secret."""
    content = f"{msg_id}.{int(timestamp)}.{body}".encode()
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    if not secrets:
        raise InvalidSecretError("at least one secret is needed to sign a message")
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and the base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_BYTES)).decode("ascii")
