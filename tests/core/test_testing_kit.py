"""The test kit (``portal.testing``) itself: real PostgreSQL, real pages, a real receiver, real signatures.

The last tests run pytest in a subprocess on a package of their own with no pytest settings, as a
third-party plugin's tests run, to prove the kit applies the asyncio settings itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook

from portal.db.engine import fetch, tenant_transaction
from portal.events.signing import new_secret
from portal.ids import new_id
from portal.platform import Platform
from portal.tenancy.files import TenantFileError
from portal.testing import (
    MerchantFactory,
    SignatureError,
    WebhookReceiver,
    assert_not_found,
    assert_tenant_table,
    verify_signature,
)


async def test_a_merchant_switches_its_plugin_and_settings(portal_merchant: MerchantFactory) -> None:
    merchant = await portal_merchant(plugins=("example",), settings={"example": {"greeting": "Ahoy"}})
    assert merchant.merchant_id.startswith("mer_") and merchant.iso_id.startswith("iso_")
    assert merchant.host == f"{merchant.slug}.portal.localhost"
    customer = await merchant.customer(name="Ada Lovelace")
    assert "Ahoy" in await customer.page("/example")
    await merchant.configure("example", greeting="Bonjour")
    assert "Bonjour" in await customer.page("/example")
    await merchant.disable("example")
    assert (await customer.get("/example")).status_code == 404
    await merchant.enable("example")
    assert "Bonjour" in await customer.page("/example")
    assert (await merchant.tenant()).enabled_plugins == {"example"}


async def test_settings_reach_the_plugin_exactly_as_given(portal_merchant: MerchantFactory) -> None:
    greeting = 'Grüße, "du" \\ 😀\n'
    merchant = await portal_merchant(plugins=("example",), settings={"example": {"greeting": greeting, "max_items": 7}})
    settings = (await merchant.tenant()).plugin_settings["example"]
    assert (settings.greeting, settings.max_items, settings.broken_widget) == (greeting, 7, False)
    with pytest.raises(TenantFileError, match="max_items"):
        await merchant.configure("example", max_items="seven")
    with pytest.raises(AssertionError, match="not turned on"):
        await portal_merchant(settings={"example": {}})


async def test_a_customer_is_signed_in_and_posts_forms_with_their_csrf_token(
    portal_merchant: MerchantFactory,
) -> None:
    merchant = await portal_merchant()
    customer = await merchant.customer("grace@example.com")
    assert customer.email == "grace@example.com" and customer.customer_id.startswith("cus_")
    assert "grace@example.com" in await customer.page("/")
    refused = await customer.client.post("/logout")  # the raw client sends no token
    assert refused.status_code == 403
    assert "grace@example.com" in await customer.page("/")
    signed_out = await customer.post("/logout")
    assert signed_out.status_code == 303
    assert (await customer.get("/")).status_code != 200
    anonymous = customer.anonymous()
    assert (await anonymous.get("/")).status_code != 200


async def test_api_keys_carry_their_scopes(portal_merchant: MerchantFactory) -> None:
    merchant = await portal_merchant()
    customer = await merchant.customer()
    api = await merchant.api_client()
    found = {"email": customer.email}
    listed = await api.get("/customers", params=found)
    assert listed.status_code == 200, listed.text
    assert [row["id"] for row in listed.json()["data"]] == [customer.customer_id]
    reader = await merchant.api_client(scopes=["customers:read"])
    assert (await reader.get("/customers", params=found)).status_code == 200
    assert (await reader.post("/customers", json={"email": "x@example.com"})).status_code == 403
    key = await merchant.api_key(scopes=["customers:read"])
    assert key.startswith("sk_")
    async with httpx.AsyncClient(base_url=api.base_url, transport=api._transport) as raw:
        answer = await raw.get("/customers", params=found, headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200


async def test_the_receiver_gets_signed_events_and_refuses_forged_ones(
    portal_merchant: MerchantFactory, webhook_receiver: WebhookReceiver
) -> None:
    merchant = await portal_merchant()
    await merchant.webhook_endpoint(webhook_receiver, events=["customer.created"])
    customer = await merchant.customer("hooked@example.com")
    event = await webhook_receiver.wait_for("customer.created", timeout=10)
    assert event["data"]["object"]["id"] == customer.customer_id
    assert event["data"]["object"]["email"] == "hooked@example.com" and event["merchant"] == merchant.merchant_id
    assert all(delivery.verified for delivery in webhook_receiver.deliveries)
    [secret] = webhook_receiver.secrets
    for delivery in webhook_receiver.deliveries:  # the reference implementation agrees
        Webhook(secret).verify(delivery.body, delivery.headers)
    body = b'{"type":"customer.created","data":{}}'
    forged = {
        "webhook-id": "msg_forged",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": Webhook(new_secret()).sign("msg_forged", datetime.now(UTC), body.decode()),
    }
    async with httpx.AsyncClient() as client:
        answer = await client.post(webhook_receiver.url, content=body, headers=forged)
    assert answer.status_code == 400
    assert webhook_receiver.failures == ["no signature of msg_forged matches the endpoint's secret"]
    assert len(webhook_receiver.events("customer.created")) == 1


async def test_a_stopped_receivers_endpoints_are_retired(
    portal_merchant: MerchantFactory, portal_platform: Platform
) -> None:
    merchant = await portal_merchant()
    receiver = WebhookReceiver(portal_platform)
    await receiver.start()
    endpoint = await merchant.webhook_endpoint(receiver)
    await merchant.customer()
    await receiver.stop()
    async with tenant_transaction(merchant.iso_id):
        [row] = await fetch("SELECT enabled FROM portal_webhook_endpoint WHERE id = $1", endpoint)
        pending = await fetch(
            "SELECT id FROM portal_webhook_delivery WHERE endpoint_id = $1 AND status = 'pending'", endpoint
        )
    assert row["enabled"] is False and pending == []


def test_signatures_are_checked_as_the_reference_package_signs_them() -> None:
    secret, body = new_secret(), '{"type":"x"}'
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": "v1,bm90IGl0 " + Webhook(secret).sign("msg_1", now, body),
    }
    verify_signature([new_secret(), secret], headers, body.encode())
    for changed in (
        {"webhook-id": "msg_2"},
        {"webhook-timestamp": str(int(now.timestamp()) - 3600)},
        {"webhook-signature": "v1,bm90IGl0"},
    ):
        with pytest.raises(SignatureError):
            verify_signature([secret], {**headers, **changed}, body.encode())
    with pytest.raises(SignatureError):
        verify_signature([secret], headers, body.encode() + b" ")


async def test_audit_records_say_who_did_what_to_what(portal_merchant: MerchantFactory) -> None:
    merchant = await portal_merchant()
    customer = await merchant.customer("audited@example.com")
    [created] = await merchant.audit("customer.created")
    assert created.target == ("customer", customer.customer_id)
    assert created.actor[0] == "merchant_api_key" and created.payload["email"] == "audited@example.com"
    assert created.customer_id == customer.customer_id
    assert [record.seq for record in await merchant.audit()] == sorted(record.seq for record in await merchant.audit())
    other = await portal_merchant(iso=merchant)
    assert other.iso_id == merchant.iso_id and other.merchant_id != merchant.merchant_id
    assert await other.audit() == []


async def test_a_card_on_file_is_the_customers_default(portal_merchant: MerchantFactory) -> None:
    merchant = await portal_merchant(plugins=("cards",))
    customer = await merchant.customer()
    card = await merchant.card_on_file(customer)
    assert card.last4 == "1111" and card.brand == "visa" and card.customer_id == customer.customer_id
    page = await customer.page("/payment-methods")
    assert "1111" in page


async def test_the_clock_moves_the_merchants_time(portal_merchant: MerchantFactory) -> None:
    merchant = await portal_merchant()
    before = await merchant.clock.now()
    report = await merchant.clock.advance(by=timedelta(days=2))
    after = await merchant.clock.now()
    assert timedelta(days=2) <= after - before < timedelta(days=2, minutes=5)
    assert datetime.fromisoformat(report["now"]) == after and report["merchant"] == merchant.slug
    await merchant.clock.advance("1d")
    assert await merchant.clock.now() == after + timedelta(days=1)


async def test_another_merchants_and_isos_ids_answer_404(portal_merchant: MerchantFactory) -> None:
    mine = await portal_merchant(plugins=("cards",))
    sibling = await portal_merchant(plugins=("cards",), iso=mine)
    stranger = await portal_merchant(plugins=("cards",))
    me = await mine.customer()
    own = await mine.card_on_file(me)
    theirs = [await m.card_on_file(await m.customer()) for m in (sibling, stranger)]
    assert (await me.get(f"/payment-methods/{own.id}/remove")).status_code == 200
    await me.assert_not_found("/payment-methods/{id}/remove", *(card.id for card in theirs))
    await assert_not_found(me.client, "/payment-methods/{id}/remove", *(card.id for card in theirs), method="POST")
    with pytest.raises(AssertionError, match="200, not 404"):
        await me.assert_not_found("/payment-methods/{id}/remove", own.id)


async def test_tenant_tables_pass_and_open_tables_fail(
    portal_merchant: MerchantFactory, portal_platform: Platform
) -> None:
    merchant = await portal_merchant(plugins=("example",))
    customer = await merchant.customer()
    await assert_tenant_table("portal_customer", platform=portal_platform)
    async with tenant_transaction(merchant.iso_id):
        await fetch(
            "INSERT INTO example_note (id, iso_id, customer_id, body) VALUES ($1, $2, $3, 'hi')",
            new_id("note"),
            merchant.iso_id,
            customer.customer_id,
        )
    await assert_tenant_table("example_note", columns=("iso_id",))
    with pytest.raises(AssertionError, match="no merchant_id column"):
        await assert_tenant_table("example_note")
    owner = await asyncpg.connect(portal_platform.settings.database_url)
    name = f"kit_probe_{uuid.uuid4().hex[:8]}"
    try:
        await owner.execute(f"CREATE TABLE {name} (id text PRIMARY KEY, iso_id text, merchant_id text)")
        await owner.execute(f"INSERT INTO {name} VALUES ('a', $1, $2)", merchant.iso_id, merchant.merchant_id)
        with pytest.raises(AssertionError, match="row-level security enabled: False"):
            await assert_tenant_table(name)
        await owner.execute(
            f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY; ALTER TABLE {name} FORCE ROW LEVEL SECURITY"
        )
        await owner.execute(
            f"CREATE POLICY tenant_isolation ON {name} USING (iso_id = portal_current_iso() OR true) "
            "WITH CHECK (iso_id = portal_current_iso())"
        )
        with pytest.raises(AssertionError, match="tenant_isolation is ALL USING"):
            await assert_tenant_table(name)
        await owner.execute(f"DELETE FROM {name}")
        await owner.execute(f"DROP POLICY tenant_isolation ON {name}")
        await owner.execute(
            f"CREATE POLICY tenant_isolation ON {name} USING (iso_id = portal_current_iso()) "
            "WITH CHECK (iso_id = portal_current_iso())"
        )
        with pytest.raises(AssertionError, match="has no row"):
            await assert_tenant_table(name)
    finally:
        await owner.execute(f"DROP TABLE IF EXISTS {name}")
        await owner.close()


# --- a package of its own, with no pytest settings ----------------------------------------------

BARE_TESTS = '''
import asyncio

import pytest


@pytest.fixture(scope="session")
async def session_loop():
    """A session-scoped async fixture: it and every test must share one event loop."""
    return asyncio.get_running_loop()


async def test_a_page_of_a_merchant(portal_merchant, session_loop):
    assert asyncio.get_running_loop() is session_loop
    merchant = await portal_merchant()
    customer = await merchant.customer("bare@example.com")
    assert "bare@example.com" in await customer.page("/")


async def test_the_same_loop_again(portal_platform, session_loop):
    assert asyncio.get_running_loop() is session_loop
    assert portal_platform.started
'''


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PORTAL_TEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_package_without_pytest_settings_runs_async_tests_in_the_session_loop(
    tmp_path: Path, portal_server_dsn: str
) -> None:
    package = tmp_path / "bare_plugin"
    (package / "tests").mkdir(parents=True)
    (package / "tests" / "test_bare.py").write_text(textwrap.dedent(BARE_TESTS), encoding="utf-8")
    result = run_pytest(package, f"--portal-db-url={portal_server_dsn}", "-W", "error::pytest.PytestDeprecationWarning")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "2 passed" in output, output
    assert re.search(
        r"asyncio: mode=(Mode\.)?auto, .*asyncio_default_fixture_loop_scope=session, "
        r"asyncio_default_test_loop_scope=session\n",
        output,
        re.IGNORECASE,
    ), output


def test_a_projects_own_asyncio_settings_win(tmp_path: Path) -> None:
    package = tmp_path / "own_settings"
    package.mkdir()
    (package / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_test_loop_scope = module\n", encoding="utf-8"
    )
    (package / "test_nothing.py").write_text("def test_nothing():\n    pass\n", encoding="utf-8")
    result = run_pytest(package, "-o", "asyncio_default_fixture_loop_scope=function")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(
        r"asyncio: mode=(Mode\.)?strict, .*asyncio_default_fixture_loop_scope=function, "
        r"asyncio_default_test_loop_scope=module\n",
        output,
        re.IGNORECASE,
    ), output
