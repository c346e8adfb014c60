"""The merchant's permissions: what the settings do not allow is not offered, and refused when forged.

A refused request answers 403 with a page saying why and writes nothing (the subscription row, its
invoices and its audit records are the same after it).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from plugins.subscriptions.conftest import DEFAULTS, MAIN, MERCHANT_ACTOR, PARTIAL, RESTRICTED, Shopper, World
from plugins.subscriptions.helpers import text

from portal.billing import subscriptions
from portal.db.engine import tenant_transaction
from portal.platform import Platform
from portal.tenancy.files import TenantFileError
from portal.testing import apply_tenants


async def _paused_and_canceling(world: World, shopper: Shopper, slug: str) -> tuple[str, str, str]:
    """Three subscriptions of ``shopper``: active, paused, and set to cancel at the period's end."""
    price = world.prices[slug]["Monthly Bread Box"]
    active = await shopper.subscribe(price)
    paused = await shopper.subscribe(price)
    canceling = await shopper.subscribe(price)
    now = datetime.now(UTC)
    async with tenant_transaction(shopper.tenant.merchant.iso_id):
        await subscriptions.pause(
            shopper.tenant, paused.id, reason="Other", resumes_at=now + timedelta(days=40), now=now,
            actor=MERCHANT_ACTOR,
        )  # fmt: skip
        await subscriptions.cancel(shopper.tenant, canceling.id, at_period_end=True, now=now, actor=MERCHANT_ACTOR)
    return active.id, paused.id, canceling.id


async def _refused(world: World, shopper: Shopper, slug: str, sub_id: str, path: str, data: dict[str, str]) -> str:
    before = await world.rows(slug, sub_id)
    response = await shopper.post(f"/subscriptions/{sub_id}/{path}", **data)
    assert response.status_code == 403, (path, data, response.status_code)
    assert await world.rows(slug, sub_id) == before, (path, data)
    return text(response.text)


async def test_with_every_permission_off_no_action_is_offered_or_taken(world: World, shopper) -> None:
    sam = await shopper(RESTRICTED)
    active, paused, canceling = await _paused_and_canceling(world, sam, RESTRICTED)
    for sub_id in (active, paused, canceling):
        page = text((await sam.client.get(f"/subscriptions/{sub_id}")).text)
        for action in ("Pause", "Resume now", "Cancel subscription", "Keep my subscription", "Change plan"):
            assert action not in page.replace("Paused", ""), (sub_id, action)
    for path, what in (("pause", "Pausing"), ("cancel", "Cancelling"), ("change", "Changing")):
        for suffix in ("", "/review"):
            form = await sam.client.get(f"/subscriptions/{active}/{path}{suffix}")
            assert form.status_code == 403 and f"{what} subscriptions is not available here." in form.text
            assert "Please contact Locked Down at help@example.test." in text(form.text)
    forged = [
        (active, "pause", {"reason": "Other", "duration": "1"}),
        (paused, "resume", {}),
        (active, "cancel", {"mode": "period_end"}),
        (active, "cancel", {"mode": "immediately"}),
        (canceling, "undo-cancel", {}),
        (active, "change", {"quantity": "2", "quoted_at": datetime.now(UTC).isoformat(), "quoted_amount": "0"}),
    ]
    for sub_id, path, data in forged:
        page = await _refused(world, sam, RESTRICTED, sub_id, path, data)
        assert "is not available here" in page


async def test_cancel_mode_period_end_refuses_cancelling_at_once(world: World, shopper) -> None:
    sam = await shopper(DEFAULTS)
    box = await sam.subscribe(world.prices[DEFAULTS]["Monthly Bread Box"])
    form = await sam.client.get(f"/subscriptions/{box.id}/cancel")
    assert 'value="immediately"' not in form.text
    assert "stays active until the end of the current period" in text(form.text)
    review = await sam.client.get(f"/subscriptions/{box.id}/cancel/review", params={"mode": "immediately"})
    assert review.status_code == 403
    page = await _refused(world, sam, DEFAULTS, box.id, "cancel", {"mode": "immediately"})
    assert "Cancelling at once is not available here" in page
    detail = text((await sam.client.get(f"/subscriptions/{box.id}")).text)
    assert "Change plan or quantity" not in detail  # neither plan nor quantity changes are on by default
    await _refused(world, sam, DEFAULTS, box.id, "change", {"quantity": "2", "quoted_amount": "0"})


async def test_cancel_mode_immediately_refuses_cancelling_at_period_end(world: World, shopper) -> None:
    sam = await shopper(PARTIAL)
    box = await sam.subscribe(world.prices[PARTIAL]["Monthly Bread Box"])
    page = await _refused(world, sam, PARTIAL, box.id, "cancel", {"mode": "period_end"})
    assert "Cancelling at the end of the period is not available here." in page


async def test_plan_changes_only_among_the_listed_prices(world: World, shopper) -> None:
    sam = await shopper(PARTIAL)  # quantity changes only
    box = await sam.subscribe(world.prices[PARTIAL]["Monthly Bread Box"])
    other = world.prices[PARTIAL]["Family Bread Box"].id
    form = await sam.client.get(f"/subscriptions/{box.id}/change")
    assert other not in form.text and "Family Bread Box" not in form.text
    review = await sam.client.get(f"/subscriptions/{box.id}/change/review", params={"price": other})
    assert review.status_code == 403 and "Changing to another plan is not available here." in review.text
    await _refused(world, sam, PARTIAL, box.id, "change", {"price": other, "quantity": "1", "quoted_amount": "0"})

    jane = await shopper(MAIN)  # plan changes among three prices; the office plan is not one of them
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    office = world.prices[MAIN]["Office Breakfast Plan"].id
    assert office not in (await jane.client.get(f"/subscriptions/{box.id}/change")).text
    await _refused(world, jane, MAIN, box.id, "change", {"price": office, "quantity": "1", "quoted_amount": "0"})


async def test_quantity_changes_only_when_allowed_and_up_to_the_maximum(world: World, shopper) -> None:
    sam = await shopper(PARTIAL)
    box = await sam.subscribe(world.prices[PARTIAL]["Monthly Bread Box"])
    before = await world.rows(PARTIAL, box.id)
    too_many = await sam.client.get(f"/subscriptions/{box.id}/change/review", params={"quantity": "4"})
    assert too_many.status_code == 400 and "from 1 to 3" in too_many.text
    forged = await sam.post(f"/subscriptions/{box.id}/change", quantity="4", quoted_amount="0",
                            quoted_at=datetime.now(UTC).isoformat())  # fmt: skip
    assert forged.status_code == 400
    assert await world.rows(PARTIAL, box.id) == before


async def test_pause_reasons_and_durations_come_from_the_settings(world: World, shopper) -> None:
    sam = await shopper(PARTIAL)
    box = await sam.subscribe(world.prices[PARTIAL]["Monthly Bread Box"])
    before = await world.rows(PARTIAL, box.id)
    for data in (
        {"reason": "Other", "duration": "1"},
        {"reason": "Travelling", "duration": "2"},
        {"reason": "Travelling", "duration": "until_date", "resume_on": "2099-01-01"},
    ):
        response = await sam.post(f"/subscriptions/{box.id}/pause", **data)
        assert response.status_code == 400, data
    response = await sam.post(f"/subscriptions/{box.id}/cancel", mode="immediately", reason="unused")
    assert response.status_code == 400
    assert await world.rows(PARTIAL, box.id) == before
    done = await sam.post(f"/subscriptions/{box.id}/pause", reason="Travelling", duration="1")
    assert done.status_code == 303 and (await sam.subscription(box.id)).status == "paused"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ("allow_pauses = true", "allow_pauses"),
        ("pause_durations = [0]", "pause_durations"),
        ("pause_durations = [1, 1]", "pause_durations must not repeat"),
        ('pause_durations = ["forever"]', "pause_durations"),
        ("pause_reasons = []", "pause_reasons"),
        ('cancel_mode = "never"', "cancel_mode"),
        ('cancel_reasons = ["bored"]', "cancel_reasons"),
        ("allow_plan_change = true", "allow_plan_change needs plan_change_prices"),
        ('plan_change_prices = ["not-a-price"]', "plan_change_prices"),
        ("quantity_max = 0", "quantity_max"),
        ('proration_behavior = "sometimes"', "proration_behavior"),
        ('allow_pause = "yes"', "allow_pause"),
    ],
)
async def test_invalid_settings_are_refused_when_applied(
    shared_tenants: Platform, tmp_path: Path, settings: str, named: str
) -> None:
    slug = f"subs-invalid-{uuid.uuid4().hex[:8]}"
    text = (
        f'[[isos]]\nslug = "{slug}-iso"\nname = "Invalid"\n\n[[isos.merchants]]\nslug = "{slug}"\nname = "Invalid"\n'
        f"[isos.merchants.plugins.subscriptions]\nsettings = {{ {settings} }}\n"
    )
    with pytest.raises(TenantFileError) as error:
        await apply_tenants(shared_tenants, text, tmp_path)
    assert "subscriptions" in str(error.value) and named in str(error.value), str(error.value)
    assert await shared_tenants.tenants.resolve(f"{slug}.portal.localhost") is None
