"""Paying invoices at the sandbox gateway: approval, decline, a lost answer, refusals.

The lost answer goes through the real sandbox adapter: a wrapper charges with it and then raises
as a dropped connection would, so the sandbox holds the approved sale and the ledger never heard.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from portal.billing import charges, invoices, subscriptions
from portal.billing.errors import BillingError
from portal.db.engine import fetch
from portal.events.verify import verify_chain
from portal.payments.gateway import GatewayResponse, GatewayUnavailableError, Money
from portal.tenancy.models import Tenant
from support.billing import ACTOR, DECLINED_ON_SALE, Ledger

NOW = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)


class AnswerLost:
    """The merchant's real adapter, except that the answer to the next sale never arrives."""

    def __init__(self, gateways: Any) -> None:
        self.gateways = gateways
        self.sales: list[str] = []

    def for_tenant(self, tenant: Tenant) -> Any:
        real = self.gateways.for_tenant(tenant)
        outer = self

        class Lossy:
            key = real.key

            async def sale(self, *, vault_id: str, billing_id: str, amount: Money, order_id: str) -> GatewayResponse:
                await real.sale(vault_id=vault_id, billing_id=billing_id, amount=amount, order_id=order_id)
                outer.sales.append(order_id)
                raise GatewayUnavailableError("connection reset by peer after the request was sent")

        return Lossy()


async def sandbox_sales(ledger: Ledger, order_id: str) -> list[dict[str, Any]]:
    async with ledger.tx():
        return await fetch(
            "SELECT outcome, amount_minor FROM portal_sandbox_transaction WHERE merchant_id = $1 AND order_id = $2",
            ledger.tenant.merchant.id,
            order_id,
        )


async def test_an_approved_charge_pays_the_invoice(ny: Ledger) -> None:
    customer = await ny.customer()
    card = await ny.card(customer)
    subscription = await ny.subscribe(await ny.price(3900), now=NOW, customer=customer)
    async with ny.tx():
        [invoice] = await invoices.list(ny.tenant, subscription=subscription.id)
    attempt = await charges.pay_invoice(ny.platform, ny.tenant, invoice.id, now=NOW, actor=ACTOR)
    assert (attempt.outcome, attempt.classification, attempt.amount, attempt.payment_method) == (
        "approved", "approved", 3900, card.id,
    )  # fmt: skip
    assert attempt.order_id == f"{invoice.id}-1" and attempt.transaction_id
    async with ny.tx():
        paid = await invoices.get(ny.tenant, invoice.id)
    assert (paid.status, paid.amount_paid, paid.amount_due, paid.paid_at) == ("paid", 3900, 0, NOW)
    assert (await ny.events(invoice.id))[-2:] == ["payment.succeeded", "invoice.paid"]
    with pytest.raises(BillingError) as again:
        await charges.pay_invoice(ny.platform, ny.tenant, invoice.id, now=NOW, actor=ACTOR)
    assert again.value.code == "invalid_transition"
    assert len(await sandbox_sales(ny, attempt.order_id)) == 1


async def test_a_decline_makes_the_subscription_past_due_and_a_later_payment_recovers_it(ny: Ledger) -> None:
    customer = await ny.customer()
    await ny.card(customer, DECLINED_ON_SALE)
    subscription = await ny.subscribe(await ny.price(2500), now=NOW, customer=customer)
    async with ny.tx():
        [invoice] = await invoices.list(ny.tenant, subscription=subscription.id)
    declined = await charges.pay_invoice(ny.platform, ny.tenant, invoice.id, now=NOW, actor=ACTOR)
    assert (declined.outcome, declined.classification, declined.response_code) == ("declined", "retryable", 201)
    async with ny.tx():
        assert (await invoices.get(ny.tenant, invoice.id)).status == "open"
        assert (await subscriptions.get(ny.tenant, subscription.id)).status == "past_due"
        rows = await fetch(
            "SELECT data FROM portal_audit_event WHERE target_id = $1 AND type = 'invoice.payment_failed'", invoice.id
        )
    assert json.loads(rows[0]["data"])["classification"] == "retryable"
    assert (await ny.events(subscription.id))[-1] == "subscription.updated"

    good = await ny.card(customer)
    paid = await charges.pay_invoice(ny.platform, ny.tenant, invoice.id, now=NOW, actor=ACTOR)
    assert (paid.outcome, paid.order_id, paid.payment_method) == ("approved", f"{invoice.id}-2", good.id)
    async with ny.tx():
        assert (await subscriptions.get(ny.tenant, subscription.id)).status == "active"
        assert [a.outcome for a in await charges.attempts(ny.tenant, invoice.id)] == ["declined", "approved"]


async def test_a_lost_answer_is_asked_again_with_the_same_order_id_and_never_charged_twice(ny: Ledger) -> None:
    customer = await ny.customer()
    await ny.card(customer)
    subscription = await ny.subscribe(await ny.price(4200), now=NOW, customer=customer)
    async with ny.tx():
        [invoice] = await invoices.list(ny.tenant, subscription=subscription.id)
    lossy = AnswerLost(ny.platform.gateways)
    with pytest.raises(BillingError) as lost:
        await charges.pay_invoice(SimpleNamespace(gateways=lossy), ny.tenant, invoice.id, now=NOW, actor=ACTOR)  # type: ignore[arg-type]
    assert lost.value.code == "gateway_unavailable"
    order_id = f"{invoice.id}-1"
    assert lossy.sales == [order_id]
    assert [row["outcome"] for row in await sandbox_sales(ny, order_id)] == ["approved"]
    async with ny.tx():
        assert (await invoices.get(ny.tenant, invoice.id)).status == "open"
        assert await charges.attempts(ny.tenant, invoice.id) == []  # unresolved: no outcome recorded

    recovered = await charges.pay_invoice(ny.platform, ny.tenant, invoice.id, now=NOW, actor=ACTOR)
    assert (recovered.order_id, recovered.outcome) == (order_id, "approved")
    assert len(await sandbox_sales(ny, order_id)) == 1, "the gateway answered the earlier approval"
    assert await ny.count("portal_billing_payment_attempt", invoice_id=invoice.id) == 1
    async with ny.tx():
        paid = await invoices.get(ny.tenant, invoice.id)
    assert (paid.status, paid.amount_paid) == ("paid", 4200)
    assert (await ny.events(invoice.id)).count("invoice.paid") == 1


async def test_refusals_before_the_gateway(ny: Ledger) -> None:
    customer = await ny.customer()
    subscription = await ny.subscribe(await ny.price(1000), now=NOW, customer=customer)
    async with ny.tx():
        [invoice] = await invoices.list(ny.tenant, subscription=subscription.id)
    with pytest.raises(BillingError) as no_card:
        await charges.pay_invoice(ny.platform, ny.tenant, invoice.id, now=NOW, actor=ACTOR)
    assert no_card.value.code == "no_payment_method"
    assert await ny.count("portal_billing_payment_attempt", invoice_id=invoice.id) == 0
    with pytest.raises(RuntimeError):
        async with ny.tx():
            await charges.pay_invoice(ny.platform, ny.tenant, invoice.id, now=NOW, actor=ACTOR)


async def test_many_invoices_paid_together_each_get_their_own_answer(ny: Ledger) -> None:
    """``pay_invoices`` (the engine's charge batches): one claim and one record transaction for all."""
    price = await ny.price(3900)
    approving, declining, settled = [await ny.customer() for _ in range(3)]
    await ny.card(approving)
    await ny.card(declining, DECLINED_ON_SALE)
    await ny.card(settled)
    subs = [await ny.subscribe(price, now=NOW, customer=customer) for customer in (approving, declining, settled)]
    async with ny.tx():
        approve, decline, paid = [(await invoices.list(ny.tenant, subscription=sub.id))[0] for sub in subs]
    await charges.pay_invoice(ny.platform, ny.tenant, paid.id, now=NOW, actor=ACTOR)
    requests = [
        charges.PayRequest(tenant=ny.tenant, invoice_id=invoice.id, now=NOW) for invoice in (approve, decline, paid)
    ]
    requests.append(charges.PayRequest(tenant=ny.tenant, invoice_id="inv_not_there", now=NOW))
    approved, declined, refused, missing = await charges.pay_invoices(ny.platform, requests, actor=ACTOR)
    assert not isinstance(approved, Exception) and approved.outcome == "approved"
    assert not isinstance(declined, Exception) and declined.outcome == "declined"
    assert isinstance(refused, BillingError) and refused.code == "invalid_transition"
    assert isinstance(missing, BillingError) and missing.code == "not_found"
    async with ny.tx():
        statuses = [(await invoices.get(ny.tenant, invoice.id)).status for invoice in (approve, decline, paid)]
        subscription_statuses = [(await subscriptions.get(ny.tenant, sub.id)).status for sub in subs]
    assert statuses == ["paid", "open", "paid"]
    assert subscription_statuses == ["active", "past_due", "active"]
    assert (await ny.events(approve.id))[-2:] == ["payment.succeeded", "invoice.paid"]
    assert (await ny.events(decline.id))[-2:] == ["payment.failed", "invoice.payment_failed"]
    assert len(await sandbox_sales(ny, f"{paid.id}-1")) == 1  # the paid invoice was not charged again
    async with ny.tx():
        assert (await verify_chain(ny.tenant.merchant.id)).ok
