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

PERIOD_BOUND = "An ISO 8601 date (`2026-05-01`, midnight UTC) or date-time (without an offset: UTC)"
FromParam = Annotated[
    str | None,
    QueryParameter(
        name="from", max_length=40, description=f"Start of the period. {PERIOD_BOUND}; default: 30 days before `to`."
    ),
]
ToParam = Annotated[
    str | None,
    QueryParameter(name="to", max_length=40, description=f"End of the period, excluded. {PERIOD_BOUND}; default: now."),
]


def _moment(value: str, name: str) -> datetime:
    """``value`` as an aware UTC datetime; 400 naming ``name`` when it is not an ISO 8601 date or date-time."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationException(detail=f"'{name}' must be an ISO 8601 date or date-time.") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def period(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The period asked for, in UTC; 400 when it is unreadable, empty, reversed or longer than a year."""
    try:
        until = _moment(end, "to") if end is not None else datetime.now(UTC)
        since = _moment(start, "from") if start is not None else until - DEFAULT_PERIOD
    except OverflowError as exc:
        raise ValidationException(detail="'from' and 'to' must be dates between years 2 and 9998.") from exc
    if since >= until:
        raise ValidationException(detail="'from' must be before 'to'.")
    if until - since > LONGEST_PERIOD:
        raise ValidationException(detail="The period may span at most 366 days.")
    return since, until


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
