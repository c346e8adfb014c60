"""Test clocks: a sandbox merchant's own "now", which only moves forward.

The engine and the API read time through :func:`merchant_now`; advancing a clock (and running
what falls due) is :mod:`portal.billing.advance`'s job. Only merchants whose gateway is the
sandbox may have a clock: real money never runs on simulated time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from portal.billing.errors import BillingError
from portal.billing.rows import require_transaction
from portal.db.engine import TenantScopeError, current_iso, fetch, tenant_transaction, transaction_lock
from portal.ids import new_id
from portal.payments.choice import GatewayChoice
from portal.tenancy.models import Tenant

SANDBOX = "sandbox"


async def merchant_now(merchant_id: str, *, iso_id: str | None = None) -> datetime:
    """The merchant's test clock time if it has one, else the real time (UTC).

    Runs in the caller's tenant transaction, or opens one for ``iso_id``.
    """
    if iso_id is None:
        iso_id = current_iso()
        if iso_id is None:
            raise TenantScopeError("merchant_now needs the merchant's tenant transaction or its iso_id")
    async with tenant_transaction(iso_id):
        rows = await fetch("SELECT now FROM portal_billing_clock WHERE merchant_id = $1 AND active", merchant_id)
    return rows[0]["now"].astimezone(UTC) if rows else datetime.now(UTC)


async def merchant_times(merchant_ids: list[str]) -> dict[str, datetime]:
    """:func:`merchant_now` of several merchants of the current ISO at once, in its transaction."""
    if current_iso() is None:
        raise TenantScopeError("merchant_times runs inside the merchants' tenant transaction")
    rows = await fetch(
        "SELECT merchant_id, now FROM portal_billing_clock WHERE merchant_id = ANY($1::text[]) AND active",
        merchant_ids,
    )
    real = datetime.now(UTC)
    found = {row["merchant_id"]: row["now"].astimezone(UTC) for row in rows}
    return {merchant_id: found.get(merchant_id, real) for merchant_id in merchant_ids}


def check_allowed(tenant: Tenant) -> None:
    """Raise ``BillingError('clock_not_allowed')`` unless the merchant's gateway is the sandbox."""
    choice = tenant.gateway
    if not isinstance(choice, GatewayChoice) or choice.key != SANDBOX:
        raise BillingError("clock_not_allowed", "test clocks are for merchants on the sandbox gateway")


async def set_clock(tenant: Tenant, now: datetime) -> datetime:
    """Set the merchant's clock to ``now``, creating it if needed (forward only: ``clock_backwards``)."""
    require_transaction(tenant)
    check_allowed(tenant)
    if now.tzinfo is None:
        raise ValueError("clock times are timezone-aware")
    merchant = tenant.merchant
    await transaction_lock("billing-clock", merchant.id)
    rows = await fetch("SELECT id, now FROM portal_billing_clock WHERE merchant_id = $1 AND active", merchant.id)
    now = now.astimezone(UTC)
    if rows:
        if now < rows[0]["now"]:
            raise BillingError("clock_backwards", "a test clock only moves forward")
        await fetch("UPDATE portal_billing_clock SET now = $2 WHERE id = $1", rows[0]["id"], now)
    else:
        if now < datetime.now(UTC):
            raise BillingError("clock_backwards", "a test clock starts at the real time or later")
        await fetch(
            "INSERT INTO portal_billing_clock (id, iso_id, merchant_id, now) VALUES ($1, $2, $3, $4)",
            new_id("clock"), merchant.iso_id, merchant.id, now,
        )  # fmt: skip
    return now


async def detach_clock(tenant: Tenant) -> None:
    """Back to real time for the merchant (the clock's row stays, inactive)."""
    require_transaction(tenant)
    await fetch("UPDATE portal_billing_clock SET active = false WHERE merchant_id = $1 AND active", tenant.merchant.id)
