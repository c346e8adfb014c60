"""The merchant API's recovery report: ``GET /api/v1/recovery/summary?from&to``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from portal.sdk import ApiPrincipal, ApiScope, MerchantParam, api_merchant, tenant_transaction
from portal_payment_recovery import store
from portal_payment_recovery.report import RecoverySummary, summary

READ = ApiScope(name="recovery:read", description="Read the payment recovery report.")
DEFAULT_PERIOD = timedelta(days=30)
LONGEST_PERIOD = timedelta(days=366)

FromParam = Annotated[
    datetime | None,
    QueryParameter(name="from", description="Start of the period (ISO 8601; default: 30 days before `to`)"),
]
ToParam = Annotated[
    datetime | None, QueryParameter(name="to", description="End of the period, excluded (default: now)")
]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The period asked for, in UTC; 400 when it is empty, reversed or longer than a year."""
    try:
        end = _utc(end) if end is not None else datetime.now(UTC)
        start = _utc(start) if start is not None else end - DEFAULT_PERIOD
    except (OverflowError, ValueError) as exc:
        raise ValidationException(detail="'from' and 'to' must be dates between years 2 and 9998.") from exc
    if start >= end:
        raise ValidationException(detail="'from' must be before 'to'.")
    if end - start > LONGEST_PERIOD:
        raise ValidationException(detail="The period may span at most 366 days.")
    return start, end


@get("/recovery/summary", summary="Payment recovery report")
async def recovery_summary(
    request: Request[Any, Any, Any],
    principal: NamedDependency[ApiPrincipal],
    merchant: MerchantParam = None,
    period_from: FromParam = None,
    period_to: ToParam = None,
) -> RecoverySummary:
    """The recovery report of a period.

    Failed invoices (by their first failed charge), recovered count and amount, recovery rate,
    median time to recover, and the same by cause (``soft``: retryable declines, ``hard``: final ones).
    """
    tenant = await api_merchant(request, principal, merchant, scope=READ.name)
    start, end = period(period_from, period_to)
    async with tenant_transaction(tenant.merchant.iso_id):
        cases = await store.in_period(tenant.merchant.id, start, end)
    return summary(cases, start, end)
