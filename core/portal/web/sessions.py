"""Server-side customer sessions. The cookie holds a random secret; the table its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import msgspec

from portal.db.engine import fetch, tenant_transaction
from portal.tenancy.models import CustomerView, Tenant

COOKIE_NAME = "__Host-portal_session"
TOUCH_INTERVAL = timedelta(seconds=60)


class SessionView(msgspec.Struct, frozen=True, kw_only=True):
    """A live session: who is signed in and how they arrived."""

    customer: CustomerView
    link_id: str | None
    flow: str | None
    return_url: str | None
    locale: str | None


def digest(token: str) -> str:
    """What the table stores for a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(
    tenant: Tenant,
    customer_id: str,
    absolute: timedelta,
    *,
    link_id: str | None = None,
    flow: str | None = None,
    return_url: str | None = None,
    locale: str | None = None,
) -> str:
    """Create a session for a customer of ``tenant``; return the cookie value."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            """
            INSERT INTO portal_session (id, iso_id, merchant_id, customer_id, created_at, last_seen_at, expires_at,
                                        link_id, flow, return_url, locale)
            SELECT $1, c.iso_id, c.merchant_id, c.id, $3, $3, $4, $6, $7, $8, $9
              FROM portal_customer c WHERE c.id = $2 AND c.merchant_id = $5
            RETURNING id
            """,
            digest(token),
            customer_id,
            now,
            now + absolute,
            tenant.merchant.id,
            link_id,
            flow,
            return_url,
            locale,
        )
        if rows and locale:
            await fetch(
                "UPDATE portal_customer SET locale = $1 WHERE id = $2 AND merchant_id = $3",
                locale,
                customer_id,
                tenant.merchant.id,
            )
    if not rows:
        raise LookupError(f"customer {customer_id} does not belong to merchant {tenant.merchant.slug}")
    return token


async def load_session(tenant: Tenant, token: str, idle: timedelta) -> SessionView | None:
    """The live session on this merchant for ``token``, refreshing its idle timer.

    One statement (``portal_session_lookup``), under the merchant's ISO's row-level security like a
    tenant transaction, without the transaction's ``BEGIN`` and ``COMMIT`` round trips; inside an
    open transaction it joins it.
    """
    now = datetime.now(UTC)
    rows = await fetch(
        "SELECT * FROM portal_session_lookup($1, $2, $3, $4, $5, $6)",
        tenant.merchant.iso_id,
        digest(token),
        tenant.merchant.id,
        now,
        now - idle,
        now - TOUCH_INTERVAL,
    )
    if not rows:
        return None
    row = rows[0]
    customer = CustomerView(id=row["customer_id"], merchant_id=row["merchant_id"], email=row["email"], name=row["name"])
    return SessionView(
        customer=customer, link_id=row["link_id"], flow=row["flow"], return_url=row["return_url"], locale=row["locale"]
    )


async def set_session_locale(tenant: Tenant, token: str, locale: str) -> None:
    """Write the rest of a session, and the customer's later emails, in ``locale``."""
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            """
            WITH s AS (
                UPDATE portal_session SET locale = $1
                 WHERE id = $2 AND merchant_id = $3 AND ended_at IS NULL
             RETURNING customer_id
            )
            UPDATE portal_customer c SET locale = $1 FROM s WHERE c.id = s.customer_id AND c.merchant_id = $3
            """,
            locale,
            digest(token),
            tenant.merchant.id,
        )


async def end_session(tenant: Tenant, token: str) -> None:
    """End a session server-side."""
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            "UPDATE portal_session SET ended_at = now() WHERE id = $1 AND merchant_id = $2 AND ended_at IS NULL",
            digest(token),
            tenant.merchant.id,
        )
