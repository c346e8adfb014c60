"""Test clocks: sandbox merchants only, forward only; merchant_now reads them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from portal.billing import clock
from portal.billing.errors import BillingError
from support.billing import NO_GATEWAY, Ledger


async def test_a_clock_moves_forward_only_and_is_the_merchants_now(auckland: Ledger) -> None:
    merchant = auckland.tenant.merchant
    before = datetime.now(UTC)
    assert before <= await clock.merchant_now(merchant.id, iso_id=merchant.iso_id) <= datetime.now(UTC)
    later = datetime.now(UTC) + timedelta(days=400)
    async with auckland.tx():
        await clock.set_clock(auckland.tenant, later)
        assert await clock.merchant_now(merchant.id) == later
        with pytest.raises(BillingError) as backwards:
            await clock.set_clock(auckland.tenant, later - timedelta(seconds=1))
        assert backwards.value.code == "clock_backwards"
        await clock.detach_clock(auckland.tenant)
    assert await clock.merchant_now(merchant.id, iso_id=merchant.iso_id) < later


async def test_only_sandbox_merchants_have_clocks(ledger_for: Callable[[str], Awaitable[Ledger]]) -> None:
    other = await ledger_for(NO_GATEWAY)
    async with other.tx():
        with pytest.raises(BillingError) as refused:
            await clock.set_clock(other.tenant, datetime.now(UTC) + timedelta(days=1))
    assert refused.value.code == "clock_not_allowed"
