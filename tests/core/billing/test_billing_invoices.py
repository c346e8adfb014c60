"""Invoices: transitions, gap-free numbers under concurrent finalization, other currencies, rollbacks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from portal.billing import invoices
from portal.billing.errors import BillingError
from portal.billing.models import INVOICE_STATUSES, InvoiceStatus, LineInput
from portal.db.engine import fetch
from support.billing import ACTOR, Ledger

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LINES = [LineInput(description="Consulting", quantity=3, unit_amount=114000)]


async def draft(ledger: Ledger, customer_id: str | None = None, **kwargs: object) -> invoices.Invoice:
    customer_id = customer_id or (await ledger.customer()).id
    async with ledger.tx():
        return await invoices.create(
            ledger.tenant, customer_id=customer_id, currency=str(kwargs.pop("currency", "USD")),
            lines=kwargs.pop("lines", LINES), now=NOW, actor=ACTOR, **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip


async def test_a_one_off_invoice_with_tax_is_numbered_when_finalized(ny: Ledger) -> None:
    invoice = await draft(ny, tax=27360)
    assert (invoice.status, invoice.number, invoice.subtotal, invoice.tax, invoice.total) == (
        "draft", None, 342000, 27360, 369360,
    )  # fmt: skip
    async with ny.tx():
        final = await invoices.finalize(ny.tenant, invoice.id, now=NOW, actor=ACTOR)
    assert final.status == "open" and final.number is not None and final.number.startswith("INV-")
    assert final.issued_at == final.due_at == NOW and final.amount_due == 369360 and final.hosted
    assert await ny.events(invoice.id) == ["invoice.created", "invoice.finalized"]


async def in_status(ny: Ledger, status: InvoiceStatus) -> str:
    invoice = await draft(ny)
    if status != "draft":
        async with ny.tx():
            await invoices.finalize(ny.tenant, invoice.id, now=NOW, actor=ACTOR)
            await fetch("UPDATE portal_billing_invoice SET status = $2 WHERE id = $1", invoice.id, status)
    return invoice.id


ACTIONS = {
    "finalize": ({"draft"}, "open", "invoice.finalized"),
    "void": ({"open", "uncollectible"}, "void", "invoice.voided"),
    "mark_uncollectible": ({"open"}, "uncollectible", "invoice.marked_uncollectible"),
    "record_payment": ({"open", "uncollectible"}, "paid", "invoice.paid"),
}


@pytest.mark.parametrize("status", INVOICE_STATUSES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_each_invoice_action_from_each_status(ny: Ledger, action: str, status: InvoiceStatus) -> None:
    allowed, after, event = ACTIONS[action]
    invoice_id = await in_status(ny, status)
    before = await ny.events(invoice_id)

    async def run() -> invoices.Invoice:
        async with ny.tx():
            if action == "record_payment":
                return await invoices.record_payment(ny.tenant, invoice_id, 342000, now=NOW, actor=ACTOR)
            function = getattr(invoices, action)
            result: invoices.Invoice = await function(ny.tenant, invoice_id, now=NOW, actor=ACTOR)
            return result

    if status not in allowed:
        with pytest.raises(BillingError) as refused:
            await run()
        assert refused.value.code == "invalid_transition"
        assert await ny.events(invoice_id) == before
        return
    result = await run()
    assert result.status == after
    assert (await ny.events(invoice_id))[-1] == event
    if after == "void":
        assert result.amount_due == 0


async def test_numbers_are_contiguous_and_unique_under_concurrent_finalization(auckland: Ledger) -> None:
    customer = await auckland.customer()
    drafts = [await draft(auckland, customer.id) for _ in range(20)]

    async def finalize(invoice_id: str) -> str:
        async with auckland.tx():
            final = await invoices.finalize(auckland.tenant, invoice_id, now=NOW, actor=ACTOR)
        assert final.number is not None
        return final.number

    numbers = await asyncio.gather(*(finalize(invoice.id) for invoice in drafts))
    values = sorted(int(number.removeprefix("INV-")) for number in numbers)
    assert len(set(values)) == 20
    assert values == list(range(values[0], values[0] + 20))
    async with auckland.tx():
        rows = await fetch(
            "SELECT number FROM portal_billing_invoice WHERE merchant_id = $1 AND number IS NOT NULL",
            auckland.tenant.merchant.id,
        )
    every = sorted(int(row["number"].removeprefix("INV-")) for row in rows)
    assert every == list(range(1001, 1001 + len(every))), "no gaps since the merchant's first invoice"


async def test_a_number_taken_by_a_rolled_back_finalization_is_used_by_the_next(ny: Ledger) -> None:
    first, second = await draft(ny), await draft(ny)
    with pytest.raises(RuntimeError):
        async with ny.tx():
            taken = await invoices.finalize(ny.tenant, first.id, now=NOW, actor=ACTOR)
            raise RuntimeError("failed after numbering")
    async with ny.tx():
        used = await invoices.finalize(ny.tenant, second.id, now=NOW, actor=ACTOR)
        assert (await invoices.get(ny.tenant, first.id)).status == "draft"
    assert used.number == taken.number


@pytest.mark.parametrize(("currency", "unit", "expected"), [("EUR", 1999, 5997), ("JPY", 1000, 3000)])
async def test_invoices_in_other_currencies(ny: Ledger, currency: str, unit: int, expected: int) -> None:
    price = await ny.price(unit, currency=currency)
    assert price.currency == currency
    invoice = await draft(ny, currency=currency, lines=[LineInput(description="Box", quantity=3, unit_amount=unit)])
    assert (invoice.currency, invoice.total) == (currency, expected)
    with pytest.raises(BillingError) as refused:
        await ny.price(100, currency="ABC")
    assert refused.value.code == "invalid_currency"


async def test_an_invalid_line_leaves_no_invoice(ny: Ledger) -> None:
    customer = await ny.customer()
    bad = [*LINES, LineInput(description="Refund", unit_amount=-500)]
    with pytest.raises(BillingError) as refused:
        await draft(ny, customer.id, lines=bad)
    assert refused.value.code == "invalid_amount"
    assert await ny.count("portal_billing_invoice", customer_id=customer.id) == 0
    assert await ny.count("portal_audit_event", customer_id=customer.id) == 0


async def test_an_invoice_with_nothing_due_is_paid_when_finalized(ny: Ledger) -> None:
    invoice = await draft(ny, lines=[LineInput(description="Free sample", unit_amount=0)])
    async with ny.tx():
        final = await invoices.finalize(ny.tenant, invoice.id, now=NOW, actor=ACTOR)
    assert (final.status, final.paid_at) == ("paid", NOW)
    assert await ny.events(invoice.id) == ["invoice.created", "invoice.finalized", "invoice.paid"]
