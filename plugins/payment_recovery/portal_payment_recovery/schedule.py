"""The scheduled job: queue the retries and reminders that fell due, ISO by ISO, in each merchant's time.

Due is measured on the merchant's clock (its test clock, if it has one), so advancing a sandbox
merchant's clock brings its retries and reminders due like its renewals. Queuing clears the
case's due time in the same transaction; the task sets the next one when it has run.
"""

from __future__ import annotations

from datetime import timedelta

from portal.sdk import Platform, ScheduledJob, iso_ids, merchant_now, queue_task, tenant_transaction
from portal_payment_recovery import store
from portal_payment_recovery.mail import send_recovery_email
from portal_payment_recovery.settings import KEY, settings_of
from portal_payment_recovery.tasks import retry

EVERY = timedelta(seconds=60)


async def queue_due(platform: Platform, iso_id: str) -> int:
    """Queue the due retries and emails of one ISO's merchants where recovery is on; how many were queued."""
    async with tenant_transaction(iso_id):
        merchant_ids = await store.merchants_with_open_cases()
    queued = 0
    for merchant_id in merchant_ids:
        tenant = await platform.tenants.load_merchant(iso_id, merchant_id)
        if tenant is None or KEY not in tenant.enabled_plugins:
            continue  # off here: its failed invoices stay past due, nothing is charged or emailed
        emails = settings_of(tenant.plugin_settings).emails
        async with tenant_transaction(iso_id):
            now = await merchant_now(merchant_id)
            for case in await store.due(merchant_id, now):
                changes: dict[str, object] = {}
                if case.next_retry_at is not None and case.next_retry_at <= now:
                    key = f"{case.id}:retry:{case.retries}"
                    await queue_task(retry, {"case": case.id}, merchant_id=merchant_id, dedupe_key=key)
                    changes["next_retry_at"] = None
                if case.next_email_at is not None and case.next_email_at <= now:
                    if emails:
                        key = f"{case.id}:email:{case.emails}"
                        await queue_task(
                            send_recovery_email, {"case": case.id}, merchant_id=merchant_id, dedupe_key=key
                        )
                    changes["next_email_at"] = None
                await store.update(merchant_id, case.id, **changes)
                queued += 1
    return queued


async def run(platform: Platform) -> None:
    """Every ISO in turn (row-level security stays on)."""
    for iso_id in await iso_ids():
        await queue_due(platform, iso_id)


JOBS = [ScheduledJob(name="payment_recovery.due", every=EVERY, run=run)]
