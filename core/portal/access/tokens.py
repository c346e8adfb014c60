"""The portal link token: ``pt1.<kid>.<payload>.<signature>``.

``payload`` is the unpadded base64url of the claims' canonical JSON (keys in the order of
:class:`Claims`, no whitespace, ASCII). ``signature`` is the unpadded base64url of
HMAC-SHA256 keyed with the signing secret's UTF-8 bytes over ``pt1.<kid>.<payload>``.
Verification compares signature strings in constant time and rejects any non-canonical
payload, so one claim set has exactly one token per key. ``docs/access-links.md`` shows how
a merchant's backend mints one with the standard library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Annotated

import msgspec

VERSION = "pt1"
_LINK_IN_PATH = re.compile(rf"/access/{VERSION}\.[A-Za-z0-9_.-]+")


def redact_tokens(text: str) -> str:
    """``text`` with every ``/access/<token>`` path written as ``/access/…`` (for logs)."""
    return _LINK_IN_PATH.sub("/access/…", text)


Purpose = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
"""A link purpose's name (``portal``, or one a plugin declares); see :mod:`portal.access.purposes`."""

_KID = re.compile(r"^lk_[0-9a-z]{26}$")
_PART = re.compile(r"^[A-Za-z0-9_-]+$")

Id = Annotated[str, msgspec.Meta(min_length=4, max_length=40, pattern=r"^[a-z]{2,8}_[0-9a-z]{26}$")]
Jti = Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Flow = Annotated[str, msgspec.Meta(max_length=100, pattern=r"^[a-z_]+(?::[a-z]{2,8}_[0-9a-z]{26})?$")]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=2**40)]


class Claims(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a link grants: one customer of one merchant, for one purpose, until ``exp``."""

    iso: Id
    merchant: Id
    customer: Id
    purpose: Purpose
    flow: Flow | None
    exp: Seconds
    iat: Seconds
    jti: Jti


class TokenError(ValueError):
    """The token is malformed, forged or not canonical; ``reason`` says which, for logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _PART.match(text):
        raise TokenError("invalid characters")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("invalid base64") from exc


def _mac(secret: str, signed: str) -> str:
    return _b64encode(hmac.new(secret.encode("utf-8"), signed.encode("ascii"), hashlib.sha256).digest())


def encode_claims(claims: Claims) -> bytes:
    """The canonical JSON of ``claims``."""
    return msgspec.json.encode(claims)


def sign(claims: Claims, kid: str, secret: str) -> str:
    """Mint a token for ``claims`` with key ``kid``."""
    if not _KID.match(kid):
        raise ValueError(f"invalid key id {kid!r}")
    payload = _b64encode(encode_claims(claims))
    signed = f"{VERSION}.{kid}.{payload}"
    return f"{signed}.{_mac(secret, signed)}"


def key_id_of(token: str) -> str:
    """The key id a token names (not yet verified); raises :class:`TokenError`."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise TokenError("not a pt1 token")
    if not _KID.match(parts[1]):
        raise TokenError("invalid key id")
    return parts[1]


def verify(token: str, secret: str) -> Claims:
    """Check the signature with ``secret`` and return the claims (times are not checked here)."""
    kid = key_id_of(token)
    _, _, payload, signature = token.split(".")
    expected = _mac(secret, f"{VERSION}.{kid}.{payload}")
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        raise TokenError("bad signature")
    raw = _b64decode(payload)
    try:
        claims = msgspec.json.decode(raw, type=Claims, strict=True)
    except msgspec.ValidationError as exc:
        raise TokenError(f"invalid claims: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise TokenError("payload is not JSON") from exc
    if encode_claims(claims) != raw or _b64encode(raw) != payload:
        raise TokenError("payload is not canonical")
    return claims
