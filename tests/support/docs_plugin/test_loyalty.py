"""The loyalty plugin of docs/plugin_hooks.md, loaded into a real portal: each example does what the page says."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from docs_blocks import docs_block
from portal_loyalty import cli, counts, gateway, minimal, purposes, summary, themes
from portal_loyalty.cli import loyalty_total
from portal_loyalty.events import PointsEarned
from portal_loyalty.handlers import award_points
from portal_loyalty.piccolo_app import APP_CONFIG

from portal.plugin_kit import migrations
from portal.sdk import (
    SYSTEM,
    HandledEvent,
    PluginInfo,
    emit,
    fetch,
    new_id,
    tenant_transaction,
)
from portal.tasks.schedules import ensure_schedules, run_due_schedules
from portal.tenancy.files import TenantFileError
from portal.testing import BASE_DOMAIN, MerchantFactory, TestCustomer, TestMerchant, apply_tenants, assert_tenant_table
from portal.theming.engine import ThemeRegistry

SETTINGS = {"loyalty": {"program_name": "Bread Club", "points_per_dollar": 2}}


async def loyal(portal_merchant: MerchantFactory, points: int = 120) -> tuple[TestMerchant, TestCustomer]:
    """A merchant with the plugin on and a signed-in customer holding ``points``."""
    merchant = await portal_merchant(plugins=("loyalty",), settings=SETTINGS)
    customer = await merchant.customer()
    async with tenant_transaction(merchant.iso_id):
        await fetch(
            "INSERT INTO loyalty_account (id, iso_id, merchant_id, customer_id, points, last_activity) "
            "VALUES ($1, $2, $3, $4, $5, now())",
            new_id("lya"), merchant.iso_id, merchant.merchant_id, customer.customer_id, points,
        )  # fmt: skip
    return merchant, customer


def test_the_shortest_plugin_says_who_it_is() -> None:
    assert minimal.portal_plugin_info() == PluginInfo(key="loyalty", title="Loyalty points")


async def test_the_settings_are_validated_and_reach_the_page(portal_merchant: MerchantFactory) -> None:
    merchant, customer = await loyal(portal_merchant)
    settings = (await merchant.tenant()).plugin_settings["loyalty"]
    assert (settings.program_name, settings.points_per_dollar) == ("Bread Club", 2)
    with pytest.raises(TenantFileError, match=r"Expected `int`, got `str` - at `\$.points_per_dollar`"):
        await merchant.configure("loyalty", points_per_dollar="2")
    page = await customer.page("/loyalty")
    assert "Bread Club" in page and '<p id="loyalty-points">120 points</p>' in page


async def test_the_nav_item_header_line_and_widget_show_the_points(portal_merchant: MerchantFactory) -> None:
    _, customer = await loyal(portal_merchant)
    page = await customer.page("/loyalty")
    assert '<a class="site-nav__link" href="/loyalty" aria-current="page">Bread Club</a>' in page
    assert '<span id="loyalty-line">You have 120 points</span>' in page  # before_page; no overview vars here
    overview = await customer.page("/")
    assert '<span id="loyalty-line">You have 120 points in Bread Club</span>' in overview  # template_vars
    assert "<p><strong>120</strong> points</p>" in overview and '<a href="/loyalty">See your rewards</a>' in overview


async def test_the_plugin_switched_off_has_no_page_nor_item(portal_merchant: MerchantFactory) -> None:
    merchant, customer = await loyal(portal_merchant)
    await merchant.disable("loyalty")
    assert (await customer.get("/loyalty")).status_code == 404
    assert 'href="/loyalty"' not in await customer.page("/")


async def test_the_tables_are_tenant_owned_and_the_migration_is_theirs(portal_merchant: MerchantFactory) -> None:
    await loyal(portal_merchant)
    await assert_tenant_table("loyalty_account")
    with pytest.raises(migrations.NoChangesError):
        await migrations.next_migration(APP_CONFIG)


async def test_an_earned_points_event_is_described_in_the_activity(portal_merchant: MerchantFactory) -> None:
    merchant, customer = await loyal(portal_merchant)
    tenant = await merchant.tenant()
    async with tenant_transaction(merchant.iso_id):
        for points in (0, 10):
            await emit(
                tenant.merchant, "loyalty.points_earned", PointsEarned(customer_id=customer.customer_id, points=points),
                actor=SYSTEM, customer_id=customer.customer_id, enabled_plugins=tenant.enabled_plugins,
            )  # fmt: skip
    assert [record.action for record in await merchant.audit("loyalty.points_earned")] == ["loyalty.points_earned"] * 2
    overview = await customer.page("/")
    assert "10 points earned" in overview and ">0 points earned" not in overview


async def test_the_event_handler_awards_points_once(portal_merchant: MerchantFactory, portal_platform) -> None:
    merchant, customer = await loyal(portal_merchant)
    _, handler = portal_platform.registry.event_handlers["loyalty.award_points"]
    assert handler.event_types == frozenset({"invoice.paid"})
    event = HandledEvent(
        id=new_id("evt"), type="invoice.paid", iso_id=merchant.iso_id, merchant_id=merchant.merchant_id, seq=1,
        data={}, customer_id=customer.customer_id, target_type=None, target_id=None,
    )  # fmt: skip
    async with tenant_transaction(merchant.iso_id):
        await award_points(event)
        await award_points(event)
        rows = await fetch("SELECT id, points FROM loyalty_points WHERE customer_id = $1", customer.customer_id)
    assert rows == [{"id": "pts_" + event.id, "points": 10}]
    await assert_tenant_table("loyalty_points", columns=("iso_id",))  # the handler's awards name no merchant


async def test_the_api_lists_balances_for_keys_with_the_scope(portal_merchant: MerchantFactory) -> None:
    merchant, customer = await loyal(portal_merchant)
    reader = await merchant.api_client(scopes=["loyalty:read"])
    answer = await reader.get("/loyalty/balances")
    assert answer.status_code == 200 and answer.json() == [{"customer": customer.customer_id, "points": 120}]
    other = await portal_merchant(plugins=("loyalty",))
    refused = await (await other.api_client(scopes=["customers:read"])).get("/loyalty/balances")
    assert refused.status_code == 403


async def test_the_scheduled_job_expires_old_points(portal_merchant: MerchantFactory, portal_platform) -> None:
    merchant, customer = await loyal(portal_merchant)
    job = portal_platform.registry.scheduled_jobs["loyalty.expire_points"]
    assert job.every == timedelta(hours=24)
    async with tenant_transaction(merchant.iso_id):
        await fetch("UPDATE loyalty_account SET last_activity = now() - interval '3 years' WHERE customer_id = $1",
                    customer.customer_id)  # fmt: skip
    await ensure_schedules([job.name])
    assert await run_due_schedules(portal_platform, "docs-worker", timedelta(minutes=1)) >= 1
    async with tenant_transaction(merchant.iso_id):
        rows = await fetch("SELECT points FROM loyalty_account WHERE customer_id = $1", customer.customer_id)
    assert rows == [{"points": 0}]


async def test_the_summary_and_the_counts_read_the_given_merchant(portal_merchant: MerchantFactory) -> None:
    merchant, customer = await loyal(portal_merchant)
    sibling = await portal_merchant(iso=merchant, plugins=("loyalty",))
    await sibling.customer(customer.email)
    tenant = await merchant.tenant()
    assert await summary.portal_account_summary(tenant, customer.customer_id) == "120 points"
    assert await summary.portal_account_summary(await sibling.tenant(), customer.customer_id) is None
    assert await counts.portal_other_merchants_counts(tenant, [customer.email]) == {customer.email: 1}


ACME_MERCHANT = """
[[isos]]
slug = "acme-iso"
name = "Acme ISO"

[[isos.merchants]]
slug = "acme-shop"
name = "Acme Shop"
[isos.merchants.gateway]
key = "acme"
settings = { api_key = "sk_test", public_key = "pk_test" }
"""


async def test_a_merchant_takes_cards_through_the_gateway(portal_platform, tmp_path: Path) -> None:
    await apply_tenants(portal_platform, ACME_MERCHANT, tmp_path)
    tenant = await portal_platform.tenants.resolve(f"acme-shop.{BASE_DOMAIN}")
    assert tenant is not None
    adapter = portal_platform.gateways.for_tenant(tenant)
    assert isinstance(adapter, gateway.AcmeGateway) and adapter.settings.api_key == "sk_test"
    assert adapter.hosted_fields("#2f5bea").script_attributes == {"data-tokenization-key": "pk_test"}


def test_the_theme_and_purpose_are_what_the_hooks_return(portal_platform) -> None:
    [harbor] = themes.portal_themes()  # the installed Harbor theme has the key: on its own, beside base
    assert harbor.static is not None and harbor.static.is_dir()
    registry = ThemeRegistry({"base": portal_platform.registry.themes["base"], "harbor": harbor}, {})
    assert registry.chain("harbor") == (harbor, portal_platform.registry.themes["base"])
    assert registry.environment("harbor").get_template("widget.html").filename == str(harbor.templates / "widget.html")
    [purpose] = purposes.portal_link_purposes()
    assert purpose.default_ttl <= purpose.max_ttl and purpose.default_flow == "payment_method_update"
    assert portal_platform.registry.link_purposes["update_payment"] == purpose  # the cards plugin's own


def test_the_link_flow_and_the_task_module_are_registered(portal_platform) -> None:
    registry = portal_platform.registry
    assert registry.link_flows["loyalty_redeem"][1].path == "/loyalty/redeem"
    assert "portal_loyalty.tasks" in registry.task_modules


async def test_the_cli_command_prints_a_merchants_points(portal_merchant: MerchantFactory, portal_settings) -> None:
    """The docs' command line and output, for a merchant of the test's own holding 120 points.

    ``portal`` finds plugin commands through installed entry points; this plugin is not installed,
    so the process runs the same click command directly.
    """
    typed, printed = docs_block("plugin_hooks.md", "test_the_cli_command_prints_a_merchants_points").splitlines()
    [name, _] = typed.removeprefix("$ portal ").split()
    merchant, _ = await loyal(portal_merchant)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_DATABASE_URL"] = portal_settings.database_url
    command = [sys.executable, "-c", "from portal_loyalty.cli import loyalty_total; loyalty_total()", merchant.slug]
    result = await asyncio.to_thread(
        subprocess.run, command, cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout) == (0, printed + "\n"), result.stderr
    assert loyalty_total.name == name
    assert cli.portal_cli_commands()[0].command is loyalty_total


def test_the_entry_point_names_the_package_by_its_key() -> None:
    table = tomllib.loads(docs_block("plugin_hooks.md", "test_the_entry_point_names_the_package_by_its_key"))
    [(key, module)] = table["project"]["entry-points"]["portal"].items()
    info = importlib.import_module(module).portal_plugin_info()
    assert info.key == key == "loyalty"
