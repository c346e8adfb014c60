"""API keys: random, shown once, stored as SHA-256, prefixed by kind, scoped, revocable."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from typing import Literal

import msgspec

from portal.db.engine import fetch, json_value
from portal.ids import new_id
from portal.plugins.registry import CORE_SCOPES

SCOPES = tuple(scope.name for scope in CORE_SCOPES)
"""The scopes of core's own routes; plugins add theirs (``PluginRegistry.api_scopes``)."""
PREFIX = {"merchant": "sk_", "iso": "isk_"}
Kind = Literal["merchant", "iso"]


class ApiKeyError(ValueError):
    """An API key request is invalid (unknown scope, missing merchant)."""


class ApiPrincipal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling the API, decided by the key."""

    key_id: str
    kind: Kind
    iso_id: str
    merchant_id: str | None
    scopes: frozenset[str]


def hash_secret(secret: str) -> str:
    """How a key is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(
    iso_id: str,
    merchant_id: str | None,
    *,
    name: str = "",
    scopes: Iterable[str] | None = None,
    known: Iterable[str] = SCOPES,
) -> tuple[str, str]:
    """Create a key in the current tenant transaction; return ``(id, secret)``. Show the secret once.

    ``known`` lists the scopes that exist (core's by default; pass ``registry.api_scopes`` to
    include the plugins'); ``scopes`` picks among them, every known scope when ``None``.
    """
    known = sorted(set(known))
    chosen = sorted(set(known if scopes is None else scopes))
    unknown = [scope for scope in chosen if scope not in known]
    if unknown or not chosen:
        raise ApiKeyError(f"unknown scopes {unknown}; choose from {', '.join(known)}")
    kind: Kind = "merchant" if merchant_id else "iso"
    secret = PREFIX[kind] + secrets.token_urlsafe(32)
    key_id = new_id("key")
    await fetch(
        "INSERT INTO portal_api_key (id, iso_id, merchant_id, kind, name, secret_hash, hint, scopes) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
        key_id,
        iso_id,
        merchant_id,
        kind,
        name,
        hash_secret(secret),
        secret[-4:],
        json.dumps(chosen),
    )
    return key_id, secret


async def revoke_api_key(key_id: str) -> bool:
    """Revoke a key of the current ISO; False when there is no such live key."""
    rows = await fetch(
        "UPDATE portal_api_key SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id", key_id
    )
    return bool(rows)


async def principal_for(secret: str) -> ApiPrincipal | None:
    """The principal of a live key (looked up before any ISO is known), or ``None``."""
    from portal.db.engine import system_transaction, tenant_transaction

    if not secret.startswith(tuple(PREFIX.values())) or len(secret) > 100:
        return None
    async with system_transaction():
        found = await fetch("SELECT * FROM portal_find_api_key($1)", hash_secret(secret))
    if not found:
        return None
    iso_id = found[0]["iso_id"]
    async with tenant_transaction(iso_id):
        rows = await fetch(
            "UPDATE portal_api_key SET last_used_at = now() WHERE id = $1 AND revoked_at IS NULL "
            "RETURNING id, kind, merchant_id, scopes",
            found[0]["id"],
        )
    if not rows:
        return None
    row = rows[0]
    scopes = json_value(row["scopes"])
    return ApiPrincipal(
        key_id=row["id"], kind=row["kind"], iso_id=iso_id, merchant_id=row["merchant_id"], scopes=frozenset(scopes)
    )
