"""Issuing, redeeming, revoking and fulfilling portal links.

Every link our side mints is recorded in ``portal_link``; a link a merchant minted offline is
recorded the first time it is used. Redemption is one upsert on ``(merchant, jti)``, so two
simultaneous uses of a single-use link cannot both succeed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from portal.access import keys
from portal.access.purposes import UnknownPurposeError, link_purpose
from portal.access.tokens import Claims, Purpose, TokenError, key_id_of, sign, verify
from portal.config import Settings
from portal.db.engine import fetch
from portal.ids import new_id
from portal.tenancy.models import MerchantView, Tenant

CLOCK_SKEW = timedelta(seconds=60)

Refusal = Literal["invalid", "expired", "not_yet_valid", "revoked", "used", "fulfilled"]


class LinkRefusedError(Exception):
    """A link that cannot be used; ``claims`` is set when its signature was valid."""

    def __init__(self, reason: Refusal, claims: Claims | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claims = claims


class IssuedLink(msgspec.Struct, frozen=True, kw_only=True):
    """A freshly minted link."""

    id: str
    url: str
    token: str
    expires_at: datetime


def public_origin(settings: Settings, merchant: MerchantView) -> str:
    """``scheme://host[:port]`` of a merchant's portal: its custom domain, else its slug host."""
    host = merchant.custom_host or f"{merchant.slug}.{settings.base_domain}"
    port = f":{settings.public_port}" if settings.public_port else ""
    return f"{settings.public_scheme}://{host}{port}"


async def issue_link(
    settings: Settings,
    tenant: Tenant,
    customer_id: str,
    *,
    purpose: Purpose = "portal",
    flow: str | None = None,
    expires_in: timedelta | None = None,
    source: str = "api",
    return_url: str | None = None,
    locale: str | None = None,
) -> IssuedLink:
    """Mint and record a link for a customer of ``tenant`` (inside its tenant transaction)."""
    merchant = tenant.merchant
    spec = link_purpose(purpose)  # UnknownPurposeError (a ValueError) for a purpose no plugin declares
    ttl = expires_in or spec.default_ttl
    if ttl > spec.max_ttl or ttl <= timedelta(0):
        raise ValueError(f"a {purpose} link lives at most {int(spec.max_ttl.total_seconds())} seconds")
    now = datetime.now(UTC).replace(microsecond=0)
    link_id = new_id("pl")
    claims = Claims(
        iso=merchant.iso_id,
        merchant=merchant.id,
        customer=customer_id,
        purpose=purpose,
        flow=flow,
        exp=int((now + ttl).timestamp()),
        iat=int(now.timestamp()),
        jti=link_id,
    )
    kid, secret = await keys.signing_key(merchant.iso_id, merchant.id)
    token = sign(claims, kid, secret)
    await fetch(
        """
        INSERT INTO portal_link (id, iso_id, merchant_id, jti, customer_id, purpose, flow, source,
                                 return_url, locale, issued_at, expires_at)
        VALUES ($1, $2, $3, $1, $4, $5, $6, $7, $8, $9, $10, $11)
        """,
        link_id,
        merchant.iso_id,
        merchant.id,
        customer_id,
        purpose,
        flow,
        source,
        return_url,
        locale,
        now,
        now + ttl,
    )
    return IssuedLink(
        id=link_id, url=f"{public_origin(settings, merchant)}/access/{token}", token=token, expires_at=now + ttl
    )


class Redeemed(msgspec.Struct, frozen=True, kw_only=True):
    """A link accepted for use."""

    link_id: str
    claims: Claims
    return_url: str | None
    locale: str | None


async def authenticate(tenant: Tenant, token: str, now: datetime) -> Claims:
    """Verify signature, key, binding and times; raise :class:`LinkRefusedError`."""
    merchant = tenant.merchant
    try:
        kid = key_id_of(token)
        secret = await keys.verifying_secret(merchant.id, kid, now)
        if secret is None:
            raise LinkRefusedError("invalid")
        claims = verify(token, secret)
    except TokenError as exc:
        raise LinkRefusedError("invalid") from exc
    if claims.merchant != merchant.id or claims.iso != merchant.iso_id:
        raise LinkRefusedError("invalid")
    try:
        spec = link_purpose(claims.purpose)
    except UnknownPurposeError as exc:
        raise LinkRefusedError("invalid") from exc
    if claims.exp - claims.iat > spec.max_ttl.total_seconds():
        raise LinkRefusedError("invalid")
    if claims.iat > (now + CLOCK_SKEW).timestamp():
        raise LinkRefusedError("not_yet_valid", claims)
    if claims.exp <= now.timestamp():
        raise LinkRefusedError("expired", claims)
    return claims


async def redeem(tenant: Tenant, token: str, now: datetime | None = None) -> Redeemed:
    """Accept a link for one more use, recording it; raise :class:`LinkRefusedError`."""
    now = now or datetime.now(UTC)
    claims = await authenticate(tenant, token, now)
    rows = await fetch(
        """
        INSERT INTO portal_link AS l (id, iso_id, merchant_id, jti, customer_id, purpose, flow, source,
                                      issued_at, expires_at, first_used_at, last_used_at, use_count)
        SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, 'merchant',
               to_timestamp($8), to_timestamp($9), $10::timestamptz, $10::timestamptz, 1
         WHERE EXISTS (SELECT 1 FROM portal_customer WHERE id = $5 AND merchant_id = $3)
        ON CONFLICT (merchant_id, jti) DO UPDATE
           SET first_used_at = coalesce(l.first_used_at, EXCLUDED.first_used_at),
               last_used_at = EXCLUDED.last_used_at,
               use_count = l.use_count + 1,
               customer_id = coalesce(l.customer_id, EXCLUDED.customer_id),
               purpose = coalesce(l.purpose, EXCLUDED.purpose),
               flow = coalesce(l.flow, EXCLUDED.flow)
        RETURNING l.id, l.customer_id, l.purpose, l.use_count, l.revoked_at, l.fulfilled_at, l.return_url, l.locale
        """,
        new_id("pl"),
        tenant.merchant.iso_id,
        tenant.merchant.id,
        claims.jti,
        claims.customer,
        claims.purpose,
        claims.flow,
        claims.iat,
        claims.exp,
        now,
    )
    if not rows:  # well signed, but for a customer this merchant does not have
        raise LinkRefusedError("invalid")
    row = rows[0]
    if row["customer_id"] != claims.customer or row["purpose"] != claims.purpose:
        raise LinkRefusedError("invalid")
    if row["revoked_at"] is not None:
        raise LinkRefusedError("revoked", claims)
    if row["fulfilled_at"] is not None:
        raise LinkRefusedError("fulfilled", claims)
    if link_purpose(claims.purpose).single_use and row["use_count"] > 1:
        raise LinkRefusedError("used", claims)
    return Redeemed(link_id=row["id"], claims=claims, return_url=row["return_url"], locale=row["locale"])


async def revoke_link(tenant: Tenant, jti: str) -> datetime:
    """Revoke a link by its id (``jti``), even one minted offline and never used yet."""
    now = datetime.now(UTC)
    rows = await fetch(
        """
        INSERT INTO portal_link AS l (id, iso_id, merchant_id, jti, source, revoked_at)
        VALUES ($1, $2, $3, $4, 'merchant', $5)
        ON CONFLICT (merchant_id, jti) DO UPDATE SET revoked_at = coalesce(l.revoked_at, EXCLUDED.revoked_at)
        RETURNING l.revoked_at
        """,
        new_id("pl"),
        tenant.merchant.iso_id,
        tenant.merchant.id,
        jti,
        now,
    )
    revoked_at: datetime = rows[0]["revoked_at"]
    await fetch(
        "UPDATE portal_session SET ended_at = now() WHERE merchant_id = $1 AND ended_at IS NULL "
        "AND link_id IN (SELECT id FROM portal_link WHERE merchant_id = $1 AND jti = $2)",
        tenant.merchant.id,
        jti,
    )
    return revoked_at


async def is_revoked(tenant: Tenant, jti: str) -> bool:
    """True when the merchant revoked the link with this id."""
    rows = await fetch(
        "SELECT 1 FROM portal_link WHERE merchant_id = $1 AND jti = $2 AND revoked_at IS NOT NULL",
        tenant.merchant.id,
        jti,
    )
    return bool(rows)


async def fulfil_link(tenant: Tenant, link_id: str, *, purpose: Purpose | None = None) -> None:
    """Mark a purpose link done (for example the card was updated): it cannot be reopened.

    With ``purpose``, only a link issued for that purpose is marked (a general portal link that
    opened the same page stays usable).
    """
    await fetch(
        "UPDATE portal_link SET fulfilled_at = coalesce(fulfilled_at, now()) "
        "WHERE merchant_id = $1 AND id = $2 AND ($3::text IS NULL OR purpose = $3)",
        tenant.merchant.id,
        link_id,
        purpose,
    )
