"""The worker's side of recovery: open a case, charge it again on schedule, settle it when paid elsewhere.

Event handlers (``handlers.py``) only queue these tasks, in the event's transaction; the tasks
have the platform (gateways, settings, mail) and do their work in transactions of their own.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from portal.sdk import (
    SYSTEM,
    BillingError,
    PermanentTaskError,
    Platform,
    TaskRun,
    Tenant,
    billing_charges,
    durable_task,
    merchant_now,
    tenant_transaction,
)
from portal_payment_recovery import outcomes, store
from portal_payment_recovery.emitting import emit_for
from portal_payment_recovery.events import LINK_OPENED, LinkOpened
from portal_payment_recovery.mail import tenant_for


@durable_task("payment_recovery.open")
async def open_case(task: TaskRun) -> None:
    """Start recovering an invoice whose charge failed: the case, its schedule and the dunning email."""
    tenant = await tenant_for(task)
    if tenant is None:
        return
    args = task.args
    try:
        failed_at = msgspec.convert(args["failed_at"], datetime, strict=False)
    except (KeyError, msgspec.ValidationError) as exc:
        raise PermanentTaskError(f"bad arguments: {exc}") from exc
    async with tenant_transaction(tenant.merchant.iso_id):
        case = await store.open_case(
            tenant.merchant.iso_id, tenant.merchant.id, customer_id=str(args["customer"]),
            invoice_id=str(args["invoice"]), subscription_id=args.get("subscription"), amount=int(args["amount"]),
            currency=str(args["currency"]), cause="hard" if args["classification"] == "final" else "soft",
            failed_at=failed_at,
        )  # fmt: skip
        if case is not None:
            await outcomes.plan(tenant, case)


@durable_task("payment_recovery.retry")
async def retry(task: TaskRun) -> None:
    """Charge a soft-declined case's invoice again with the card on file (a hard one just ends, unpaid)."""
    tenant = await tenant_for(task)
    if tenant is None:
        return
    platform, merchant = task.platform, tenant.merchant
    case_id = str(task.args["case"])
    async with tenant_transaction(merchant.iso_id):
        case = await store.get(merchant.id, case_id, lock=True)
        if case is None or case.status != "open":
            return
        now = await merchant_now(merchant.id)
        if case.cause == "hard":
            await outcomes.exhaust(platform, tenant, case, reason="final_decline", now=now, actor=SYSTEM)
            return
    request = billing_charges.PayRequest(tenant=tenant, invoice_id=case.invoice_id)
    (result,) = await billing_charges.pay_invoices(platform, [request], actor=SYSTEM)
    if isinstance(result, BillingError) and result.code == "gateway_unavailable":
        raise result  # the same order id is asked again when the task is retried
    if isinstance(result, BillingError) and result.code in ("invalid_transition", "nothing_due", "not_found"):
        await _settle(platform, tenant, case.invoice_id)
        return
    if isinstance(result, Exception) and not isinstance(result, BillingError):
        raise result
    async with tenant_transaction(merchant.iso_id):
        now = await merchant_now(merchant.id)
        await outcomes.record_charge(platform, tenant, case.id, result, trigger="schedule", now=now, actor=SYSTEM)


async def _settle(platform: Platform, tenant: Tenant, invoice_id: str) -> None:
    """The invoice of an open case no longer takes a charge: recovered when it is paid, ended when it is void."""
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        case = await store.for_invoice(merchant.id, invoice_id, lock=True)
        if case is None or case.status != "open":
            return
        now = await merchant_now(merchant.id)
        await outcomes.settle(platform, tenant, case, via="other", now=now, actor=SYSTEM)


@durable_task("payment_recovery.settle")
async def settle(task: TaskRun) -> None:
    """``invoice.paid`` or ``invoice.voided`` for an invoice in recovery: the case is recovered, or ended."""
    tenant = await tenant_for(task)
    if tenant is not None:
        await _settle(task.platform, tenant, str(task.args["invoice"]))


@durable_task("payment_recovery.link_opened")
async def link_opened(task: TaskRun) -> None:
    """A customer opened an emailed update link: ``recovery.link_opened``."""
    tenant = await tenant_for(task)
    if tenant is None:
        return
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        case = await store.case_of_link(merchant.id, str(task.args["link"]))
        if case is None:
            return
        payload = LinkOpened(case=case.id, invoice=case.invoice_id, customer=case.customer_id, link=task.args["link"])
        await emit_for(task.platform, tenant, case, LINK_OPENED, payload, SYSTEM)
