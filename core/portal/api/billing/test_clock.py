"""``/api/v1/test-clock``: a sandbox merchant's simulated time, and moving it forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import JSONBody

from portal.api.auth import merchant_tenant, require
from portal.api.billing.common import CONFLICT_RESPONSE, BillingController, body_time
from portal.api.billing.schemas import ClockAdvance, ClockAdvanced, TestClock
from portal.api.keys import ApiPrincipal
from portal.api.params import MerchantParam
from portal.billing import clock
from portal.db.engine import fetch, tenant_transaction
from portal.web.state import platform_of

START_MARGIN = timedelta(seconds=1)
"""A clock started by a first advance starts this far ahead of the real time (never behind it)."""


class TestClockController(BillingController):
    """Test clocks: only merchants whose gateway is the sandbox have one (422 ``clock_not_allowed`` otherwise)."""

    path = "/test-clock"
    tags = ["billing"]

    @get("/", summary="Read the test clock")
    async def read(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], merchant: MerchantParam = None
    ) -> TestClock:
        """The time renewals and charges see for the merchant (the real time until a clock is set)."""
        require(principal, "billing:read")
        tenant = await merchant_tenant(request, principal, merchant)
        clock.check_allowed(tenant)
        async with tenant_transaction(tenant.merchant.iso_id):
            rows = await fetch(
                "SELECT now FROM portal_billing_clock WHERE merchant_id = $1 AND active", tenant.merchant.id
            )
            now = await clock.merchant_now(tenant.merchant.id)
        return TestClock(merchant=tenant.merchant.id, now=now, frozen=bool(rows))

    @post("/advance", status_code=200, summary="Advance the test clock", responses=CONFLICT_RESPONSE)
    async def advance(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], data: JSONBody[ClockAdvance]
    ) -> ClockAdvanced:
        """Move the clock to ``to`` (or ``by`` a duration), running every renewal, cancellation and charge due."""
        from portal.billing import advance  # the engine's module, loaded only when a clock moves

        require(principal, "billing:write")
        if (data.to is None) == (data.by is None):
            message = "Give exactly one of 'to' and 'by'"
            raise ValidationException(detail=f"{message}.", extra=[{"key": "to", "source": "body", "message": message}])
        target = body_time("to", data.to)
        tenant = await merchant_tenant(request, principal, data.merchant)
        clock.check_allowed(tenant)
        async with tenant_transaction(tenant.merchant.iso_id):
            running = await fetch(
                "SELECT now FROM portal_billing_clock WHERE merchant_id = $1 AND active", tenant.merchant.id
            )
            # A first advance starts the clock at the real time, from where it then moves.
            now = running[0]["now"] if running else await clock.set_clock(tenant, datetime.now(UTC) + START_MARGIN)
        if target is None:
            target = now + advance.parse_duration(str(data.by))
        report = await advance.advance_clock(platform_of(request), tenant, target)
        return msgspec.convert(msgspec.structs.asdict(report), ClockAdvanced, from_attributes=True)
