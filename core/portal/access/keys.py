"""Per-merchant signing keys: several may verify (rotation), one signs, each retires on a date."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import msgspec

from portal.db.engine import fetch, transaction_lock
from portal.ids import new_id

SECRET_PREFIX = "lsk_"  # noqa: S105 - a prefix, not a secret


class SigningKeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A signing key without its secret."""

    kid: str
    is_primary: bool
    created_at: datetime
    retire_at: datetime | None


async def create_key(iso_id: str, merchant_id: str, *, retire_others_after: timedelta | None = None) -> tuple[str, str]:
    """Make a new primary key; optionally schedule the merchant's other keys to retire.

    Returns ``(kid, secret)``; the secret is shown to the operator once. Runs in the caller's
    tenant transaction.
    """
    kid, secret = new_id("lk"), SECRET_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    if retire_others_after is not None:
        await fetch(
            "UPDATE portal_signing_key SET retire_at = $2 WHERE merchant_id = $1 "
            "AND (retire_at IS NULL OR retire_at > $2)",
            merchant_id,
            now + retire_others_after,
        )
    await fetch("UPDATE portal_signing_key SET is_primary = false WHERE merchant_id = $1 AND is_primary", merchant_id)
    await fetch(
        "INSERT INTO portal_signing_key (id, iso_id, merchant_id, secret, is_primary, created_at) "
        "VALUES ($1, $2, $3, $4, true, $5)",
        kid,
        iso_id,
        merchant_id,
        secret,
        now,
    )
    return kid, secret


async def retire_key(merchant_id: str, kid: str, at: datetime | None = None) -> bool:
    """Stop ``kid`` verifying at ``at`` (now by default). False when the merchant has no such key."""
    rows = await fetch(
        "UPDATE portal_signing_key SET retire_at = $3, is_primary = false "
        "WHERE merchant_id = $1 AND id = $2 RETURNING id",
        merchant_id,
        kid,
        at or datetime.now(UTC),
    )
    return bool(rows)


async def list_keys(merchant_id: str) -> list[SigningKeyInfo]:
    """The merchant's keys, newest first."""
    rows = await fetch(
        "SELECT id AS kid, is_primary, created_at, retire_at FROM portal_signing_key "
        "WHERE merchant_id = $1 ORDER BY created_at DESC",
        merchant_id,
    )
    return [SigningKeyInfo(**row) for row in rows]


async def verifying_secret(merchant_id: str, kid: str, now: datetime) -> str | None:
    """The secret of an unretired key of this merchant, or ``None``."""
    rows = await fetch(
        "SELECT secret FROM portal_signing_key WHERE merchant_id = $1 AND id = $2 "
        "AND (retire_at IS NULL OR retire_at > $3)",
        merchant_id,
        kid,
        now,
    )
    return str(rows[0]["secret"]) if rows else None


async def signing_key(iso_id: str, merchant_id: str) -> tuple[str, str]:
    """The primary ``(kid, secret)``, creating the merchant's first key if it has none.

    Links issued at the same time for a merchant without a key (two workers sending its first
    sign-in emails) wait for each other, so one creates the key and the others use it.
    """
    for locked in (False, True):
        rows = await fetch(
            "SELECT id, secret FROM portal_signing_key WHERE merchant_id = $1 AND is_primary "
            "AND (retire_at IS NULL OR retire_at > now())",
            merchant_id,
        )
        if rows:
            return str(rows[0]["id"]), str(rows[0]["secret"])
        if not locked:
            await transaction_lock("signing-key", merchant_id)
    return await create_key(iso_id, merchant_id)
