from portal.testing import MerchantFactory, WebhookReceiver, assert_tenant_table


async def test_a_note_is_kept_and_sent(portal_merchant: MerchantFactory, webhook_receiver: WebhookReceiver) -> None:
    merchant = await portal_merchant(plugins=["notes"])
    await merchant.webhook_endpoint(webhook_receiver, events=["notes.note_added"])
    customer = await merchant.customer()
    assert (await customer.post("/notes", data={"body": "Call back"})).status_code == 303
    assert "Call back" in await customer.page("/notes")
    assert "Call back" in await customer.page("/")  # the widget, beside the nav item
    [record] = await merchant.audit("notes.note_added")
    assert record.actor == ("customer", customer.customer_id)
    event = await webhook_receiver.wait_for("notes.note_added")
    assert event["data"]["object"] == {"id": record.payload["id"], "body": "Call back"}
    await assert_tenant_table("notes_note")


async def test_a_note_too_long_for_the_setting_is_refused(portal_merchant: MerchantFactory) -> None:
    customer = await (await portal_merchant(plugins=["notes"], settings={"notes": {"max_length": 5}})).customer()
    refused = await customer.post("/notes", data={"body": "Too long"})
    assert refused.status_code == 400
    assert "1 to 5 characters" in refused.text


async def test_other_merchants_notes_stay_theirs(portal_merchant: MerchantFactory) -> None:
    merchant = await portal_merchant(plugins=["notes"])
    for other in (await portal_merchant(plugins=["notes"], iso=merchant), await portal_merchant(plugins=["notes"])):
        await (await other.customer()).post("/notes", data={"body": "Not yours"})
    assert "Not yours" not in await (await merchant.customer()).page("/notes")


async def test_switched_off_there_is_no_page_and_no_nav_item(portal_merchant: MerchantFactory) -> None:
    merchant = await portal_merchant(plugins=["notes"])
    customer = await merchant.customer()
    await merchant.disable("notes")
    assert (await customer.get("/notes")).status_code == 404
    assert 'href="/notes"' not in await customer.page("/")
