"""Server-side customer sessions. The cookie holds a random secret; the table its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from portal.db.engine import fetch, tenant_transaction
from portal.tenancy.models import CustomerView, Tenant

COOKIE_NAME = "__Host-portal_session"
TOUCH_INTERVAL = timedelta(seconds=60)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(tenant: Tenant, customer_id: str, absolute: timedelta) -> str:
    """Create a session for a customer of ``tenant``; return the cookie value."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            """
            INSERT INTO portal_session (id, iso_id, merchant_id, customer_id, created_at, last_seen_at, expires_at)
            SELECT $1, c.iso_id, c.merchant_id, c.id, $3, $3, $4
              FROM portal_customer c WHERE c.id = $2 AND c.merchant_id = $5
            """,
            _digest(token),
            customer_id,
            now,
            now + absolute,
            tenant.merchant.id,
        )
    return token


async def load_session(tenant: Tenant, token: str, idle: timedelta) -> CustomerView | None:
    """The customer of a live session on this merchant, refreshing its idle timer."""
    now = datetime.now(UTC)
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            """
            SELECT s.last_seen_at, c.id, c.merchant_id, c.email, c.name
              FROM portal_session s JOIN portal_customer c ON c.id = s.customer_id
             WHERE s.id = $1 AND s.merchant_id = $2 AND c.merchant_id = $2
               AND s.ended_at IS NULL AND s.expires_at > $3 AND s.last_seen_at > $4
            """,
            _digest(token),
            tenant.merchant.id,
            now,
            now - idle,
        )
        if not rows:
            return None
        row = rows[0]
        if now - row["last_seen_at"] > TOUCH_INTERVAL:
            await fetch("UPDATE portal_session SET last_seen_at = $2 WHERE id = $1", _digest(token), now)
    return CustomerView(id=row["id"], merchant_id=row["merchant_id"], email=row["email"], name=row["name"])


async def end_session(tenant: Tenant, token: str) -> None:
    """End a session server-side."""
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            "UPDATE portal_session SET ended_at = now() WHERE id = $1 AND merchant_id = $2 AND ended_at IS NULL",
            _digest(token),
            tenant.merchant.id,
        )
