"""The subscription pages as a customer uses them: list, detail, pause and resume, cancel and undo, change."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from plugins.subscriptions.conftest import MAIN, PARTIAL, SIBLING, World
from plugins.subscriptions.helpers import day, hidden_fields, item, text

from portal.billing.calendar import add_periods
from portal.db.engine import fetch, tenant_transaction


async def test_the_list_shows_each_plan_its_status_and_next_charge(world: World, shopper) -> None:
    jane = await shopper()
    prices = world.prices[MAIN]
    box = await jane.subscribe(prices["Monthly Bread Box"], quantity=2)
    office = await jane.subscribe(prices["Office Breakfast Plan"])
    page = await jane.client.get("/subscriptions")
    assert page.status_code == 200
    assert 'aria-current="page"' in page.text and ">Subscriptions<" in page.text
    listed_box = item(page.text, box.id)
    assert "Monthly Bread Box" in listed_box and "$78.00 / month" in listed_box
    assert ">2<" in listed_box and "Active" in listed_box
    assert f"$78.00 on {day(box.current_period_end)}" in listed_box
    listed_office = item(page.text, office.id)
    assert "Office Breakfast Plan" in listed_office
    assert f"$2,890.00 on {day(office.current_period_end)}" in listed_office
    assert page.text.index(office.id) < page.text.index(box.id)  # newest first


async def test_an_empty_list_says_so(world: World, shopper) -> None:
    nobody = await shopper()
    page = await nobody.client.get("/subscriptions")
    assert page.status_code == 200
    assert "You have no subscriptions with Greenfield Test." in text(page.text)


async def test_the_detail_page_shows_price_period_card_and_invoices(world: World, shopper) -> None:
    jane = await shopper()
    await jane.card()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    page = await jane.client.get(f"/subscriptions/{box.id}")
    assert page.status_code == 200
    body = text(page.text)
    assert "Price $39.00 / month" in body
    assert f"Current period {day(box.current_period_start)} \u2013 {day(box.current_period_end)}" in body
    assert "Payment method Visa ending in 1111" in body
    async with tenant_transaction(jane.tenant.merchant.iso_id):
        first = await fetch("SELECT number FROM portal_billing_invoice WHERE subscription_id = $1", box.id)
    assert first[0]["number"] in body and "$39.00" in body
    assert 'href="/invoices/' not in page.text  # the invoices plugin is not installed here: no link
    for action in ("Change plan or quantity", "Pause", "Cancel subscription"):
        assert action in body


async def test_pause_for_a_period_with_a_reason_then_resume(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    resumes = add_periods(box.billing_anchor, box.current_period_end, "month", 1, tz="America/New_York")

    form = await jane.client.get(f"/subscriptions/{box.id}/pause")
    assert form.status_code == 200
    for reason in ("Too expensive", "Travelling", "Have too much", "Other"):
        assert f'value="{reason}"' in form.text
    assert f"1 billing period (resumes {day(resumes)})" in text(form.text)
    assert "Until a date I choose" in form.text

    choice = {"reason": "Travelling", "note": "Away  in March", "duration": "1"}
    review = await jane.client.get(f"/subscriptions/{box.id}/pause/review", params=choice)
    assert review.status_code == 200
    summary = text(review.text)
    assert f"No charges until {day(resumes)} (the charge on {day(box.current_period_end)} is skipped)" in summary
    assert f"resumes automatically on {day(resumes)}, and $39.00 is charged on {day(resumes)}" in summary
    assert (await jane.subscription(box.id)).status == "active"  # the review changed nothing

    fields = hidden_fields(review.text)
    assert fields["note"] == "Away in March"
    response = await jane.client.post(f"/subscriptions/{box.id}/pause", data=fields)
    assert response.status_code == 303
    assert response.headers["location"] == f"/subscriptions/{box.id}?done=paused"
    paused = await jane.subscription(box.id)
    assert paused.status == "paused" and paused.resumes_at == resumes
    assert paused.pause_reason == "Travelling \u2014 Away in March"
    page = text((await jane.client.get(response.headers["location"])).text)
    assert "Done: Monthly Bread Box is paused." in page
    assert f"Paused until {day(resumes)}" in page and "Resume now" in page
    listed = item((await jane.client.get("/subscriptions")).text, box.id)
    assert f"Paused until {day(resumes)}" in listed and f"$39.00 on {day(resumes)}" in listed

    record = (await world.audit(MAIN, box.id))[-1]
    assert record["type"] == "subscription.paused"
    assert (record["actor_type"], record["actor_id"]) == ("customer", jane.customer.id)
    assert record["ip"] and record["user_agent"].startswith("python-httpx") and record["request_id"]
    assert json.loads(record["before"])["status"] == "active"
    assert json.loads(record["after"])["status"] == "paused"
    assert json.loads(record["data"])["subscription"]["pause_reason"] == "Travelling \u2014 Away in March"

    resumed = await jane.post(f"/subscriptions/{box.id}/resume")
    assert resumed.headers["location"] == f"/subscriptions/{box.id}?done=resumed"
    assert (await jane.subscription(box.id)).status == "active"
    assert "Monthly Bread Box is active again." in (await jane.client.get(resumed.headers["location"])).text
    record = (await world.audit(MAIN, box.id))[-1]
    assert record["type"] == "subscription.resumed" and record["actor_id"] == jane.customer.id


async def test_pause_until_a_chosen_day(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    local = box.current_period_end.astimezone(day.__globals__["NEW_YORK"]) + timedelta(days=40)
    choice = {"reason": "Have too much", "duration": "until_date", "resume_on": local.date().isoformat()}
    review = await jane.client.get(f"/subscriptions/{box.id}/pause/review", params=choice)
    assert review.status_code == 200, review.text
    response = await jane.client.post(f"/subscriptions/{box.id}/pause", data=hidden_fields(review.text))
    assert response.status_code == 303
    paused = await jane.subscription(box.id)
    assert paused.resumes_at is not None
    assert paused.resumes_at.astimezone(local.tzinfo).date() == local.date()
    assert paused.resumes_at.astimezone(local.tzinfo).time() == box.billing_anchor.astimezone(local.tzinfo).time()


async def test_cancel_at_period_end_with_a_reason_then_undo(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    form = await jane.client.get(f"/subscriptions/{box.id}/cancel")
    assert form.status_code == 200
    for label in ("It's too expensive", "I'm switching to a different service", "Other reason"):
        assert label in text(form.text)
    assert "At the end of the current period" in form.text and 'value="immediately"' in form.text
    choice = {"mode": "period_end", "reason": "too_expensive", "comment": "Bread was great"}
    review = await jane.client.get(f"/subscriptions/{box.id}/cancel/review", params=choice)
    summary = text(review.text)
    assert f"stays active until {day(box.current_period_end)}: that is your last day of access" in summary
    assert "no refund" in summary and "Reason It's too expensive" in summary
    response = await jane.client.post(f"/subscriptions/{box.id}/cancel", data=hidden_fields(review.text))
    assert response.headers["location"] == f"/subscriptions/{box.id}?done=cancel_scheduled"
    scheduled = await jane.subscription(box.id)
    assert scheduled.cancel_at_period_end and scheduled.status == "active"
    assert (scheduled.cancellation_reason, scheduled.cancellation_comment) == ("too_expensive", "Bread was great")
    page = text((await jane.client.get(response.headers["location"])).text)
    assert f"Monthly Bread Box will end on {day(box.current_period_end)}. You can undo this until then." in page
    assert f"Cancels on {day(box.current_period_end)}" in page and "Keep my subscription" in page
    assert "No further charges" in item((await jane.client.get("/subscriptions")).text, box.id)

    undone = await jane.post(f"/subscriptions/{box.id}/undo-cancel")
    assert undone.headers["location"] == f"/subscriptions/{box.id}?done=cancel_undone"
    kept = await jane.subscription(box.id)
    assert not kept.cancel_at_period_end and kept.cancellation_reason is None
    types = [record["type"] for record in await world.audit(MAIN, box.id)]
    assert types[-2:] == ["subscription.cancel_scheduled", "subscription.cancel_unscheduled"]


async def test_cancel_immediately(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    review = await jane.client.get(
        f"/subscriptions/{box.id}/cancel/review", params={"mode": "immediately", "reason": "unused"}
    )
    assert "Your subscription ends now" in text(review.text)
    response = await jane.client.post(f"/subscriptions/{box.id}/cancel", data=hidden_fields(review.text))
    assert response.headers["location"] == f"/subscriptions/{box.id}?done=canceled"
    ended = await jane.subscription(box.id)
    assert ended.status == "canceled" and ended.cancellation_reason == "unused"
    page = (await jane.client.get(response.headers["location"])).text
    assert "Monthly Bread Box has ended." in page and "Cancel subscription" not in page
    assert "Canceled" in item((await jane.client.get("/subscriptions")).text, box.id)
    again = await jane.post(f"/subscriptions/{box.id}/cancel", mode="immediately")
    assert again.status_code == 409 and "cannot be cancelled now" in again.text


async def _review_change(jane, sub_id: str, **choice: str) -> tuple[dict[str, str], str]:
    review = await jane.client.get(f"/subscriptions/{sub_id}/change/review", params=choice)
    assert review.status_code == 200, review.text
    return hidden_fields(review.text), text(review.text)


async def test_a_quantity_change_bills_the_amount_the_preview_showed(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"], now=datetime.now(UTC) - timedelta(days=9))
    form = await jane.client.get(f"/subscriptions/{box.id}/change")
    assert form.status_code == 200 and 'name="quantity"' in form.text and "Family Bread Box" in form.text
    fields, summary = await _review_change(jane, box.id, quantity="3")
    assert "Monthly Bread Box: 1 \u00d7 $39.00 / month becomes 3 \u00d7 $39.00 / month" in summary
    assert "$117.00 / month in all" in summary
    quoted = int(fields["quoted_amount"])
    assert 0 < quoted < 2 * 3900  # two more boxes for the rest of the period, less what was paid
    assert f"Charged now: ${quoted // 100}.{quoted % 100:02d}" in summary
    assert "Unused time on Monthly Bread Box" in summary and "Remaining time on 3 \u00d7 Monthly Bread Box" in summary
    before = await world.rows(MAIN, box.id)
    response = await jane.client.post(f"/subscriptions/{box.id}/change", data=fields)
    assert response.headers["location"] == f"/subscriptions/{box.id}?done=changed"
    assert (await jane.subscription(box.id)).quantity == 3
    after = await world.rows(MAIN, box.id)
    new = [row for row in after["invoices"] if row not in before["invoices"]]
    assert len(new) == 1 and new[0]["status"] == "open"
    async with tenant_transaction(jane.tenant.merchant.iso_id):
        invoice = await fetch("SELECT amount_due FROM portal_billing_invoice WHERE id = $1", new[0]["id"])
    assert invoice[0]["amount_due"] == quoted
    record = (await world.audit(MAIN, box.id))[-1]
    assert record["type"] == "subscription.updated" and record["actor_id"] == jane.customer.id
    assert (json.loads(record["before"])["quantity"], json.loads(record["after"])["quantity"]) == (1, 3)
    page = text((await jane.client.get(response.headers["location"])).text)
    assert "Monthly Bread Box was changed." in page and "Amount $117.00 / month" in page


async def test_a_plan_change_among_the_listed_prices(world: World, shopper) -> None:
    jane = await shopper()
    prices = world.prices[MAIN]
    box = await jane.subscribe(prices["Monthly Bread Box"])
    fields, summary = await _review_change(jane, box.id, price=prices["Family Bread Box"].id, quantity="1")
    assert "becomes 1 \u00d7 Family Bread Box at $59.00 / month" in summary and "$59.00 / month in all" in summary
    response = await jane.client.post(f"/subscriptions/{box.id}/change", data=fields)
    assert response.status_code == 303
    assert (await jane.subscription(box.id)).price == prices["Family Bread Box"].id
    office = await jane.subscribe(prices["Office Breakfast Plan"])  # not listed: offered only its own price
    form = await jane.client.get(f"/subscriptions/{office.id}/change")
    assert "Office Breakfast Plan" in form.text and "Family Bread Box" in form.text


async def test_a_stale_or_altered_preview_changes_nothing(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"], now=datetime.now(UTC) - timedelta(days=3))
    fields, _ = await _review_change(jane, box.id, quantity="2")
    before = await world.rows(MAIN, box.id)
    old = {**fields, "quoted_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat()}
    altered = {**fields, "quoted_amount": str(int(fields["quoted_amount"]) - 1)}
    for data in (old, altered, {**fields, "quoted_at": "yesterday"}, {**fields, "quoted_amount": "lots"}):
        response = await jane.client.post(f"/subscriptions/{box.id}/change", data=data)
        assert response.status_code == 409, response.text
        assert "Please review the change again." in text(response.text)
    assert await world.rows(MAIN, box.id) == before


async def test_wrong_choices_answer_400_with_the_form(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    before = await world.rows(MAIN, box.id)
    today = datetime.now(UTC).date()
    cases = [
        ("pause/review", {"reason": "Bored", "duration": "1"}, "Please choose a reason."),
        ("pause/review", {"reason": "Other", "duration": "7"}, "Please choose how long to pause."),
        ("pause/review", {"reason": "Other", "duration": "until_date", "resume_on": "soon"}, "like 2027-01-31"),
        ("pause/review", {"reason": "Other", "duration": "until_date", "resume_on": "2027-02-30"}, "like 2027-01-31"),
        ("pause/review", {"reason": "Other", "duration": "until_date",
                          "resume_on": (today + timedelta(days=400)).isoformat()}, "within 365 days"),
        ("pause/review", {"reason": "Other", "duration": "1", "note": "x" * 501}, "under 500 characters"),
        ("cancel/review", {"mode": "sometime"}, "Please choose when the subscription ends."),
        ("cancel/review", {"mode": "period_end", "reason": "bored"}, "Please choose one of the reasons"),
        ("change/review", {"quantity": "6"}, "from 1 to 5"),
        ("change/review", {"quantity": "0"}, "from 1 to 5"),
        ("change/review", {"quantity": "two"}, "from 1 to 5"),
        ("change/review", {"quantity": "1"}, "That is what you have now."),
    ]  # fmt: skip
    for path, params, message in cases:
        response = await jane.client.get(f"/subscriptions/{box.id}/{path}", params=params)
        assert response.status_code == 400, (path, params, response.status_code)
        assert message in text(response.text), (path, params)
        assert 'role="alert"' in response.text
    for path, data in (("pause", {"reason": "Bored", "duration": "1"}), ("change", {"quantity": "99"})):
        response = await jane.post(f"/subscriptions/{box.id}/{path}", **data)
        assert response.status_code in (400, 409), (path, response.status_code)
    assert await world.rows(MAIN, box.id) == before


async def test_the_overview_widget_counts_active_subscriptions_and_shows_the_next_charge(world: World, shopper) -> None:
    jane = await shopper()
    prices = world.prices[MAIN]
    box = await jane.subscribe(prices["Monthly Bread Box"])
    await jane.subscribe(prices["Office Breakfast Plan"], now=datetime.now(UTC) + timedelta(minutes=1))
    overview = text((await jane.client.get("/")).text)
    assert "Subscriptions 2 active" in overview
    assert f"Next charge: $39.00 on {day(box.current_period_end)} (Monthly Bread Box)" in overview
    assert "Manage subscriptions" in overview


async def test_the_only_card_stays_while_a_subscription_needs_it(world: World, shopper) -> None:
    jane = await shopper()
    card = await jane.card()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    refused = await jane.client.post(
        f"/payment-methods/{card.id}/remove", data={"csrf_token": await jane.csrf("/payment-methods")}
    )
    assert refused.status_code == 303
    page = text((await jane.client.get(refused.headers["location"])).text)
    assert "Your Monthly Bread Box subscription needs a card on file" in page
    await jane.post(f"/subscriptions/{box.id}/cancel", mode="immediately")
    removed = await jane.client.post(
        f"/payment-methods/{card.id}/remove", data={"csrf_token": await jane.csrf("/payment-methods")}
    )
    assert removed.headers["location"] == f"/payment-methods?done=removed&card={card.id}"


async def test_a_partial_merchant_offers_only_what_it_allows(world: World, shopper) -> None:
    sam = await shopper(PARTIAL)
    box = await sam.subscribe(world.prices[PARTIAL]["Monthly Bread Box"])
    pause = await sam.client.get(f"/subscriptions/{box.id}/pause")
    assert 'value="Travelling"' in pause.text and 'value="Other"' not in pause.text
    assert 'value="1"' in pause.text and 'value="2"' not in pause.text and "until_date" not in pause.text
    cancel = await sam.client.get(f"/subscriptions/{box.id}/cancel")
    assert "Your subscription ends as soon as you confirm." in cancel.text
    assert 'value="other"' in cancel.text and 'value="unused"' not in cancel.text
    change = await sam.client.get(f"/subscriptions/{box.id}/change")
    assert 'name="quantity"' in change.text and 'name="price" value=' in change.text  # only its own price, hidden
    assert "From 1 to 3." in change.text


NASTY = ["\x00", "a\x00b", "\r\n", "9" * 30, "-1", "1e400", "a" * 5000, "2027-13-45", "<script>", "😀", " "]
REVIEW_FIELDS = {
    "pause/review": ("reason", "note", "duration", "resume_on"),
    "cancel/review": ("mode", "reason", "comment"),
    "change/review": ("price", "quantity"),
}


async def test_no_input_to_a_review_page_or_its_confirmation_reaches_a_5xx(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    before = await world.rows(MAIN, box.id)
    token = await jane.csrf()
    for path, names in REVIEW_FIELDS.items():
        for name in names:
            for value in NASTY:
                shown = await jane.client.get(f"/subscriptions/{box.id}/{path}", params={name: value})
                assert shown.status_code in (200, 400, 403), (path, name, value[:20], shown.status_code)
                posted = await jane.client.post(
                    f"/subscriptions/{box.id}/{path.split('/')[0]}", data={"csrf_token": token, name: value}
                )
                assert posted.status_code in (303, 400, 403, 409), (path, name, value[:20], posted.status_code)
    for value in NASTY:
        confirm = {"csrf_token": token, "quantity": "2", "quoted_at": value, "quoted_amount": value}
        posted = await jane.client.post(f"/subscriptions/{box.id}/change", data=confirm)
        assert posted.status_code in (400, 409), (value[:20], posted.status_code)
    after = await world.rows(MAIN, box.id)
    assert after["subscription"][0]["status"] in ("active", "paused", "canceled")  # some values are valid choices
    assert after["invoices"] == before["invoices"]  # no change was billed: no confirmation carried a preview


async def test_a_downgrade_is_billed_from_the_next_renewal_where_the_merchant_says_so(world: World, shopper) -> None:
    sam = await shopper(PARTIAL)  # downgrades_at_period_end = true
    box = await sam.subscribe(world.prices[PARTIAL]["Monthly Bread Box"], quantity=3,
                              now=datetime.now(UTC) - timedelta(days=5))  # fmt: skip
    fields, summary = await _review_change(sam, box.id, quantity="1")
    assert fields["quoted_amount"] == "0" and "Charged now: $0.00" in summary
    assert "there is no charge or credit for the rest of this period" in summary
    before = await world.rows(PARTIAL, box.id)
    response = await sam.client.post(f"/subscriptions/{box.id}/change", data=fields)
    assert response.status_code == 303
    after = await world.rows(PARTIAL, box.id)
    assert after["invoices"] == before["invoices"]  # no credit, no draft: the next renewal bills $39.00
    assert after["subscription"][0]["quantity"] == 1
    listed = item((await sam.client.get("/subscriptions")).text, box.id)
    assert f"$39.00 on {day(box.current_period_end)}" in listed

    upgrade, summary = await _review_change(sam, box.id, quantity="2")  # an upgrade is prorated as usual
    assert int(upgrade["quoted_amount"]) > 0


async def test_with_create_prorations_the_change_waits_for_the_next_charge(world: World, shopper) -> None:
    jane = await shopper(SIBLING)
    box = await jane.subscribe(world.prices[SIBLING]["Monthly Bread Box"], now=datetime.now(UTC) - timedelta(days=15))
    fields, summary = await _review_change(jane, box.id, quantity="2")
    assert fields["quoted_amount"] == "0" and "is added to your next charge" in summary
    later = re.search(r"\$(\d+)\.(\d{2}) is added to your next charge", summary)
    assert later
    added = int(later.group(1)) * 100 + int(later.group(2))
    response = await jane.client.post(f"/subscriptions/{box.id}/change", data=fields)
    assert response.status_code == 303
    async with tenant_transaction(jane.tenant.merchant.iso_id):
        drafts = await fetch(
            "SELECT total FROM portal_billing_invoice WHERE subscription_id = $1 AND status = 'draft'", box.id
        )
    assert [row["total"] for row in drafts] == [added]
    next_charge = 2 * 3900 + added
    listed = item((await jane.client.get("/subscriptions")).text, box.id)
    assert f"${next_charge // 100}.{next_charge % 100:02d} on {day(box.current_period_end)}" in listed
