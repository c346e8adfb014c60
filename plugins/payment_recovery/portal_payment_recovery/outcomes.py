"""What happens to a case: planned, charged again, recovered or exhausted, each with its event.

Every function runs inside the merchant's tenant transaction and emits its events there, so a
case's row, its audit records and its webhooks commit together or not at all. Locks are taken
in the ledger's order: the case, then the subscription, then (through ``emit``) the audit chain.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from portal.sdk import Actor, BillingError, Platform, Tenant, billing_subscriptions, fulfil_link, queue_task
from portal_payment_recovery import store
from portal_payment_recovery.emitting import emit_for
from portal_payment_recovery.events import (
    EXHAUSTED,
    RECOVERED,
    RETRY_FAILED,
    RETRY_SUCCEEDED,
    Exhausted,
    Recovered,
    RetryOutcome,
    Trigger,
    Via,
)
from portal_payment_recovery.mail import send_receipt, send_recovery_email
from portal_payment_recovery.settings import RecoverySettings, settings_of
from portal_payment_recovery.store import Case


def deadline(case: Case, settings: RecoverySettings) -> datetime:
    """When recovery of the case ends unpaid: the schedule's last day."""
    return case.failed_at + timedelta(days=settings.retry_days[-1])


async def plan(tenant: Tenant, case: Case) -> Case:
    """Set the first retry (soft declines) or the end (hard ones), and queue the dunning email."""
    settings = settings_of(tenant.plugin_settings)
    first = case.failed_at + timedelta(days=settings.retry_days[0])
    case = await store.update(
        case.merchant_id,
        case.id,
        planned=True,
        next_retry_at=first if case.cause == "soft" else deadline(case, settings),
    )
    if settings.emails:
        await queue_task(
            send_recovery_email, {"case": case.id}, merchant_id=case.merchant_id, dedupe_key=f"{case.id}:email:0"
        )
    return case


def _outcome(case: Case, result: Any, trigger: Trigger) -> RetryOutcome:
    if isinstance(result, BillingError):
        return RetryOutcome(
            case=case.id, invoice=case.invoice_id, customer=case.customer_id, trigger=trigger, attempt=None,
            amount=case.amount, currency=case.currency, response_code=None, response_text=result.code,
            classification=None,
        )  # fmt: skip
    return RetryOutcome(
        case=case.id, invoice=case.invoice_id, customer=case.customer_id, trigger=trigger, attempt=result.id,
        amount=result.amount, currency=result.currency, response_code=result.response_code,
        response_text=result.response_text, classification=result.classification,
    )  # fmt: skip


async def record_charge(
    platform: Platform,
    tenant: Tenant,
    case_id: str,
    result: Any,
    *,
    trigger: Trigger,
    now: datetime,
    actor: Actor,
    link_id: str | None = None,
) -> Case | None:
    """Record one charge of a case's invoice (``result``: the ledger's attempt, or its ``BillingError``).

    Approved: ``recovery.retry_succeeded`` and the case recovered. Declined: ``recovery.retry_failed``;
    a scheduled retry then sets the next one, or ends the case after the last try (or a final
    decline, after which only the emails go on until the schedule's last day). A card update's
    decline changes no schedule.
    """
    case = await store.get(tenant.merchant.id, case_id, lock=True)
    if case is None or case.status != "open":
        return case
    if case.subscription_id is not None:  # the subscription before the audit chain, as the ledger locks them
        await billing_subscriptions.get(tenant, case.subscription_id, lock=True)
    outcome = _outcome(case, result, trigger)
    approved = outcome.classification == "approved"
    await emit_for(platform, tenant, case, RETRY_SUCCEEDED if approved else RETRY_FAILED, outcome, actor)
    if trigger == "schedule":
        case = await store.update(case.merchant_id, case.id, retries=case.retries + 1)
    if approved:
        return await recover(platform, tenant, case, via=trigger, now=now, actor=actor, link_id=link_id)
    if trigger != "schedule":
        return case
    settings = settings_of(tenant.plugin_settings)
    if outcome.classification == "final":  # never charged again: emails only, until the last day
        return await store.update(case.merchant_id, case.id, cause="hard", next_retry_at=deadline(case, settings))
    if case.retries >= len(settings.retry_days):
        return await exhaust(platform, tenant, case, reason="retries_exhausted", now=now, actor=actor)
    return await store.update(
        case.merchant_id, case.id, next_retry_at=case.failed_at + timedelta(days=settings.retry_days[case.retries])
    )


async def recover(
    platform: Platform,
    tenant: Tenant,
    case: Case,
    *,
    via: Via,
    now: datetime,
    actor: Actor,
    link_id: str | None = None,
) -> Case:
    """The case's invoice is paid: close it, spend its links, email a receipt, emit ``recovery.recovered``."""
    case = await store.update(
        case.merchant_id, case.id, status="recovered", resolved_at=now, recovered_amount=case.amount,
        recovered_link_id=link_id, next_retry_at=None, next_email_at=None,
    )  # fmt: skip
    for spent in {*await store.links_of(case.merchant_id, case.id), *([link_id] if link_id else [])}:
        await fulfil_link(tenant, spent, purpose="update_payment")
    seconds = max(0, int((now - case.failed_at).total_seconds()))
    payload = Recovered(
        case=case.id, invoice=case.invoice_id, customer=case.customer_id, amount=case.amount, currency=case.currency,
        via=via, seconds_to_recover=seconds,
    )  # fmt: skip
    await emit_for(platform, tenant, case, RECOVERED, payload, actor)
    if settings_of(tenant.plugin_settings).emails:
        await queue_task(send_receipt, {"case": case.id}, merchant_id=case.merchant_id, dedupe_key=f"{case.id}:receipt")
    return case


async def settle(
    platform: Platform,
    tenant: Tenant,
    case: Case,
    *,
    via: Via,
    now: datetime,
    actor: Actor,
    link_id: str | None = None,
) -> None:
    """An open case (locked) whose invoice no longer takes a charge: recovered if it is paid, ended if void."""
    status = await store.invoice_status(case.merchant_id, case.invoice_id)
    if status == "paid":
        await recover(platform, tenant, case, via=via, now=now, actor=actor, link_id=link_id)
    elif status == "void":
        await exhaust(platform, tenant, case, reason="invoice_voided", now=now, actor=actor)


async def exhaust(platform: Platform, tenant: Tenant, case: Case, *, reason: str, now: datetime, actor: Actor) -> Case:
    """Recovery ends unpaid: ``recovery.exhausted``; the subscription becomes ``unpaid`` or ``canceled`` (settings).

    A voided invoice (``reason="invoice_voided"``) only ends the case: nothing is owed, so the
    subscription is left as it is.
    """
    settings = settings_of(tenant.plugin_settings)
    action = "none"
    if case.subscription_id is not None and reason != "invoice_voided":  # nothing is owed any more
        subscription = await billing_subscriptions.get(tenant, case.subscription_id, lock=True)
        if subscription.status == "past_due":
            if settings.final_action == "unpaid":
                await billing_subscriptions.mark_unpaid(tenant, subscription.id, now=now, actor=actor)
            else:
                await billing_subscriptions.cancel(tenant, subscription.id, at_period_end=False, now=now, actor=actor)
            action = settings.final_action
    case = await store.update(
        case.merchant_id, case.id, status="exhausted", resolved_at=now, next_retry_at=None, next_email_at=None
    )
    payload = Exhausted(
        case=case.id, invoice=case.invoice_id, customer=case.customer_id, subscription=case.subscription_id,
        reason=reason, action=action,  # type: ignore[arg-type]
    )  # fmt: skip
    await emit_for(platform, tenant, case, EXHAUSTED, payload, actor)
    return case
