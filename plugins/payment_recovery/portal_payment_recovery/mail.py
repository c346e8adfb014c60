"""The emails: the dunning email and its reminders (each with a fresh update link), and the receipt.

Each is written in the customer's language (``portal_customer.locale``; the merchant's when it
has none), and the update link carries that language, so the page it opens reads the same.

Both are durable tasks, queued in the transaction that decides them, run by the worker outside
any transaction (the mail server is waited on), and retried on the task schedule if it refuses.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from portal.sdk import (
    SYSTEM,
    TaskRun,
    Tenant,
    default_method,
    durable_task,
    fetch,
    issue_link,
    send_email,
    tenant_transaction,
)
from portal_payment_recovery import store
from portal_payment_recovery.emitting import emit_for
from portal_payment_recovery.events import EMAIL_SENT, EmailSent, Kind
from portal_payment_recovery.settings import KEY, settings_of
from portal_payment_recovery.wording import describe

DUNNING = "payment_recovery/email/dunning"
RECEIPT = "payment_recovery/email/receipt"


async def tenant_for(task: TaskRun) -> Tenant | None:
    """The task's merchant when payment recovery is on there; ``None`` otherwise (the task then does nothing)."""
    if task.merchant_id is None:
        return None
    tenant: Tenant | None = await task.platform.tenants.load_merchant(task.iso_id, task.merchant_id)
    return tenant if tenant is not None and KEY in tenant.enabled_plugins else None


class Recipient(NamedTuple):
    """Whom an email goes to, and the language it is written in (``None``: the merchant's)."""

    email: str
    name: str
    locale: str | None


async def _customer(merchant_id: str, customer_id: str) -> Recipient:
    rows = await fetch(
        "SELECT email, name, locale FROM portal_customer WHERE merchant_id = $1 AND id = $2", merchant_id, customer_id
    )
    return Recipient(rows[0]["email"], rows[0]["name"], rows[0]["locale"])


@durable_task("payment_recovery.email")
async def send_recovery_email(task: TaskRun) -> None:
    """Email the customer a fresh update link for an open case; the first is the dunning email, then reminders."""
    tenant = await tenant_for(task)
    if tenant is None:
        return
    settings = settings_of(tenant.plugin_settings)
    if not settings.emails:
        return
    platform, merchant = task.platform, tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        case = await store.get(merchant.id, str(task.args["case"]))
        if case is None or case.status != "open":
            return
        customer = await _customer(merchant.id, case.customer_id)
        (charge,) = await describe(merchant, [case])
        link = await issue_link(
            platform.settings,
            tenant,
            case.customer_id,
            purpose="update_payment",
            source="email",
            locale=customer.locale,
        )
        await store.add_link(merchant.iso_id, merchant.id, case.id, link.id)
    kind: Kind = "dunning" if case.emails == 0 else "reminder"
    context = {
        "url": link.url,
        "customer_name": customer.name,
        "charge": charge,
        "reminder": kind == "reminder",
        "subscription": case.subscription_id is not None,
        "expires_days": 7,
    }
    await send_email(platform, merchant, to=customer.email, template=DUNNING, context=context, locale=customer.locale)
    async with tenant_transaction(merchant.iso_id):
        case = await store.get(merchant.id, case.id, lock=True)
        assert case is not None
        sent = case.emails + 1
        reminders = settings.reminder_days
        following = case.failed_at + timedelta(days=reminders[sent - 1]) if sent - 1 < len(reminders) else None
        case = await store.update(
            merchant.id, case.id, emails=sent, next_email_at=following if case.status == "open" else None
        )
        payload = EmailSent(
            case=case.id, invoice=case.invoice_id, customer=case.customer_id, kind=kind, link=link.id,
            link_expires_at=link.expires_at,
        )  # fmt: skip
        await emit_for(platform, tenant, case, EMAIL_SENT, payload, SYSTEM)


@durable_task("payment_recovery.receipt")
async def send_receipt(task: TaskRun) -> None:
    """Email the receipt of a recovered invoice: what was paid, when, and the card charged."""
    tenant = await tenant_for(task)
    if tenant is None:
        return
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        case = await store.get(merchant.id, str(task.args["case"]))
        if case is None or case.status != "recovered" or case.resolved_at is None:
            return
        customer = await _customer(merchant.id, case.customer_id)
        (charge,) = await describe(merchant, [case])
    card = await default_method(merchant.iso_id, merchant.id, case.customer_id)
    context = {
        "customer_name": customer.name,
        "charge": charge,
        "card": f"{card.brand.title()} •••• {card.last4}" if card else None,
        "subscription": case.subscription_id is not None,
    }
    await send_email(
        task.platform, merchant, to=customer.email, template=RECEIPT, context=context, locale=customer.locale
    )
