"""``GET /api/v1/recovery/summary``: figures of a scenario the test builds, bad input, other merchants' keys."""

from __future__ import annotations

from datetime import timedelta

from portal.api.keys import create_api_key
from portal.db.engine import tenant_transaction
from support.recovery import GOOD_CARD, STOP_RECURRING, Shop, land, link_in, tokenize


async def key_for(shop: Shop, *, iso: bool = False) -> dict[str, str]:
    merchant = shop.tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        _, secret = await create_api_key(
            merchant.iso_id, None if iso else merchant.id, known=shop.platform.registry.api_scopes
        )
    return {"Authorization": f"Bearer {secret}"}


async def test_the_summary_counts_what_was_recovered_and_what_was_not(make, csrf_of) -> None:
    shop: Shop = await make(recovery="settings = { retry_days = [2, 4], reminder_days = [] }")
    start = await shop.now()
    recovered, _, recovered_invoice = await shop.failing_subscription(amount=3900)
    hard, _, _ = await shop.failing_subscription(STOP_RECURRING, amount=1250, plan="Weekly Pies")
    _, _, soft_invoice = await shop.failing_subscription(amount=289000, plan="Office Breakfast Plan")

    _, token = link_in(await shop.mail_to(recovered.email, "didn't go through"))
    client, _ = await land(shop, token)
    csrf = csrf_of((await client.get("/payment-methods/update")).text)
    saved = await client.post(
        "/payment-methods/update", data={"csrf_token": csrf, "payment_token": await tokenize(shop, GOOD_CARD)}
    )
    assert saved.headers["location"] == "/payment-recovery/done"
    await shop.advance(timedelta(days=5))  # the soft one's two retries fail: exhausted; the hard one ends on day 4
    case = await shop.case(recovered_invoice)
    took = int((case["resolved_at"] - case["failed_at"]).total_seconds())
    assert (await shop.case(soft_invoice))["status"] == "exhausted"

    api = shop.client_factory(shop.host)
    window = {"from": start.isoformat(), "to": (await shop.now() + timedelta(seconds=1)).isoformat()}
    answer = await api.get("/api/v1/recovery/summary", params=window, headers=await key_for(shop))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {key: body[key] for key in ("failed_invoices", "recovered_count", "recovered_amount", "recovery_rate")} == {
        "failed_invoices": 3,
        "recovered_count": 1,
        "recovered_amount": [{"currency": "USD", "amount": 3900}],
        "recovery_rate": "0.3333",
    }
    assert (body["median_seconds_to_recover"], body["exhausted_count"], body["open_count"]) == (took, 2, 0)
    soft, hard_figures = body["by_cause"]["soft"], body["by_cause"]["hard"]
    assert (soft["failed_invoices"], soft["recovered_count"], soft["recovery_rate"]) == (2, 1, "0.5000")
    assert (hard_figures["failed_invoices"], hard_figures["exhausted_count"], hard_figures["recovery_rate"]) == (
        1, 1, "0.0000",
    )  # fmt: skip
    assert hard.email != recovered.email

    before = await api.get(
        "/api/v1/recovery/summary", params={"to": start.isoformat()}, headers=await key_for(shop, iso=True)
    )
    assert (before.status_code, before.json()["failed_invoices"]) == (200, 0)


async def test_bad_periods_and_other_merchants_keys_are_refused(shop: Shop, make) -> None:
    api = shop.client_factory(shop.host)
    headers = await key_for(shop)
    for params in (
        {"from": "2026-05-02T00:00:00Z", "to": "2026-05-01T00:00:00Z"},
        {"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "yesterday"},
        {"to": "0001-01-01T00:00:00Z"},
    ):
        answer = await api.get("/api/v1/recovery/summary", params=params, headers=headers)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    other = await make()
    refused = await api.get("/api/v1/recovery/summary", headers=await key_for(other))
    assert refused.status_code in (401, 403, 404)
    off = await make(recovery=None)
    assert (await api.get("/api/v1/recovery/summary", headers=await key_for(off))).status_code in (401, 403, 404)
    own_host_off = off.client_factory(off.host)
    assert (await own_host_off.get("/api/v1/recovery/summary", headers=await key_for(off))).status_code == 404
    assert (await api.get("/api/v1/recovery/summary")).status_code == 401
