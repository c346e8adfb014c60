"""Retries and reminders on the merchant's schedule, final declines, the final action, the plugin turned off."""

from __future__ import annotations

from datetime import timedelta

from portal.billing import invoices
from portal.db.engine import fetch
from portal.events.bus import SYSTEM
from support.recovery import GOOD_CARD, STOP_RECURRING, Shop


async def test_a_final_decline_is_emailed_but_never_charged_again(shop: Shop) -> None:
    customer, subscription, invoice_id = await shop.failing_subscription(STOP_RECURRING)
    case = await shop.case(invoice_id)
    assert (case["cause"], case["emails"]) == ("hard", 1)
    assert case["next_retry_at"] == case["failed_at"] + timedelta(days=14)  # the end, not a retry

    await shop.advance(timedelta(days=7))  # past the first retry day and both reminders
    assert len(await shop.attempts(invoice_id)) == 1
    assert (await shop.case(invoice_id))["emails"] == 3
    reminders = [m for m in shop.mails_to(customer.email) if str(m.message["Subject"]).startswith("Reminder:")]
    assert len(reminders) == 2

    await shop.advance(timedelta(days=8))
    assert len(await shop.attempts(invoice_id)) == 1
    assert (await shop.case(invoice_id))["status"] == "exhausted"
    status = await shop.row("SELECT status FROM portal_billing_subscription WHERE id = $1", subscription.id)
    assert status == {"status": "unpaid"}
    exhausted = [event for event in await shop.events(customer.id) if event["type"] == "recovery.exhausted"]
    assert len(exhausted) == 1


async def test_soft_declines_are_retried_on_schedule_then_the_subscription_is_canceled(make) -> None:
    shop = await make(recovery='settings = { retry_days = [2, 4], reminder_days = [], final_action = "canceled" }')
    customer, subscription, invoice_id = await shop.failing_subscription()
    await shop.advance(timedelta(days=1))
    assert len(await shop.attempts(invoice_id)) == 1  # nothing due before day 2
    await shop.advance(timedelta(days=1, hours=1))
    assert len(await shop.attempts(invoice_id)) == 2
    assert (await shop.case(invoice_id))["status"] == "open"
    await shop.advance(timedelta(days=2))
    assert [attempt["outcome"] for attempt in await shop.attempts(invoice_id)] == ["declined"] * 3
    assert (await shop.case(invoice_id))["status"] == "exhausted"
    status = await shop.row("SELECT status FROM portal_billing_subscription WHERE id = $1", subscription.id)
    assert status == {"status": "canceled"}
    types = [event["type"] for event in await shop.events(customer.id)]
    assert types == ["recovery.email_sent", "recovery.retry_failed", "recovery.retry_failed", "recovery.exhausted"]
    assert len(shop.mails_to(customer.email)) == 1  # no reminders asked for


async def test_a_scheduled_retry_with_a_card_that_works_recovers_and_resumes(shop: Shop) -> None:
    customer, subscription, invoice_id = await shop.failing_subscription()
    await shop.ledger.card(customer, GOOD_CARD)  # the customer fixed it elsewhere: the new default
    await shop.advance(timedelta(days=3, hours=1))
    assert [attempt["outcome"] for attempt in await shop.attempts(invoice_id)] == ["declined", "approved"]
    case = await shop.case(invoice_id)
    assert (case["status"], case["retries"], case["recovered_amount"]) == ("recovered", 1, 3900)
    status = await shop.row("SELECT status FROM portal_billing_subscription WHERE id = $1", subscription.id)
    assert status == {"status": "active"}
    recovered = [event for event in await shop.events(customer.id) if event["type"] == "recovery.recovered"]
    assert recovered[0]["data"]["via"] == "schedule"
    assert recovered[0]["data"]["seconds_to_recover"] >= 3 * 86400


async def test_turned_off_it_emails_and_retries_nothing_but_renewals_go_on(make) -> None:
    shop = await make(recovery=None)
    customer, subscription, invoice_id = await shop.failing_subscription()
    await shop.advance(timedelta(days=32))
    async with shop.ledger.tx():
        cases = await fetch("SELECT id FROM recovery_case WHERE merchant_id = $1", shop.tenant.merchant.id)
        invoices = await fetch(
            "SELECT id, status FROM portal_billing_invoice WHERE subscription_id = $1 ORDER BY created_at",
            subscription.id,
        )
    assert cases == []
    assert shop.mails_to(customer.email) == []
    assert len(await shop.attempts(invoice_id)) == 1  # never retried
    assert [row["status"] for row in invoices] == ["open", "open"]  # the next period was still invoiced
    assert await shop.events(customer.id) == []


async def test_a_voided_invoice_ends_its_case_without_emails_retries_or_final_action(shop: Shop) -> None:
    customer, subscription, invoice_id = await shop.failing_subscription()
    async with shop.ledger.tx():
        await invoices.void(shop.tenant, invoice_id, now=await shop.now(), actor=SYSTEM)
    await shop.work()
    case = await shop.case(invoice_id)
    assert (case["status"], case["next_retry_at"], case["next_email_at"]) == ("exhausted", None, None)
    mailed = len(shop.mails_to(customer.email))

    await shop.advance(timedelta(days=15))  # past every retry and reminder day of the default schedule
    assert len(await shop.attempts(invoice_id)) == 1
    assert len(shop.mails_to(customer.email)) == mailed
    status = await shop.row("SELECT status FROM portal_billing_subscription WHERE id = $1", subscription.id)
    assert status["status"] != "unpaid"  # nothing is owed: the final action is not applied
    exhausted = [event for event in await shop.events(customer.id) if event["type"] == "recovery.exhausted"]
    assert [(event["data"]["reason"], event["data"]["action"]) for event in exhausted] == [("invoice_voided", "none")]
