"""The blocks of docs/writing_plugins.md that are not quotes of examples/notes: the tenant snippet, the webhook body."""

from __future__ import annotations

import json
from pathlib import Path

from docs_blocks import docs_block

from portal.platform import Platform
from portal.testing import BASE_DOMAIN, MerchantFactory, WebhookReceiver, apply_tenants


async def test_the_tenant_snippet_turns_notes_on_with_its_settings(portal_platform: Platform, tmp_path: Path) -> None:
    snippet = docs_block("writing_plugins.md", "test_the_tenant_snippet_turns_notes_on_with_its_settings")
    await apply_tenants(portal_platform, f'[[isos]]\nslug = "docs-iso"\nname = "Docs ISO"\n\n{snippet}', tmp_path)
    tenant = await portal_platform.tenants.resolve(f"greenfield.{BASE_DOMAIN}")
    assert tenant is not None and tenant.merchant.name == "Greenfield Bakery"
    assert tenant.plugin_settings["notes"].max_length == 140


async def test_subscribers_receive_the_body_shown(
    portal_merchant: MerchantFactory, webhook_receiver: WebhookReceiver
) -> None:
    shown = json.loads(docs_block("writing_plugins.md", "test_subscribers_receive_the_body_shown"))
    merchant = await portal_merchant(plugins=("notes",))
    await merchant.webhook_endpoint(webhook_receiver, events=["notes.note_added"])
    customer = await merchant.customer()
    assert (await customer.post("/notes", {"body": "Call back"})).status_code == 303
    event = await webhook_receiver.wait_for("notes.note_added")
    assert event.keys() == shown.keys() and event["data"].keys() == shown["data"].keys()
    assert event["data"]["object"] == {"id": event["data"]["object"]["id"], "body": "Call back"}
    note, id_shown = event["data"]["object"]["id"], shown["data"]["object"]["id"]
    assert note.startswith(id_shown.removesuffix("…"))
    for key, value in shown.items():
        if isinstance(value, str):
            assert event[key].startswith(value.removesuffix("…")), (key, event[key])
    assert isinstance(event["audit_seq"], int)
