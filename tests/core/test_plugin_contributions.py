"""What plugins contribute at start-up: tables and migrations, events, API routes and scopes,
scheduled jobs, link purposes and flows, tasks, CLI commands and payment gateways."""

from __future__ import annotations

import types
from datetime import UTC, datetime

import asyncpg
import pytest

from portal.platform import Platform
from portal.plugin import EventType, hookimpl
from portal.plugins.manager import PluginLoadError, create_plugin_manager
from portal.plugins.registry import PluginRegistry, SettingsError


async def test_plugin_migrations_run_after_core_with_row_level_security(portal_platform: Platform) -> None:
    owner = await asyncpg.connect(portal_platform.settings.database_url)
    try:
        ran = [row["app_name"] for row in await owner.fetch("SELECT app_name FROM migration ORDER BY id")]
        forced = await owner.fetchval("SELECT relforcerowsecurity FROM pg_class WHERE relname = 'example_note'")
    finally:
        await owner.close()
    assert ran.index("example") > max(i for i, app in enumerate(ran) if app == "portal")
    assert forced is True


def test_event_types_scopes_jobs_purposes_and_gateways_are_collected(portal_platform: Platform) -> None:
    registry = portal_platform.registry
    assert registry.event_types["example.note_written"].payload.__name__ == "NoteWritten"
    assert registry.api_scopes["example:read"].description == "Read example notes."
    assert {"customers:read", "audit:read"} <= set(registry.api_scopes)  # core's own
    assert registry.scheduled_jobs["example.tick"].every.total_seconds() == 1
    assert registry.link_purposes["update_payment"].default_flow == "payment_method_update"  # the cards plugin's
    assert registry.link_purposes["portal"].single_use
    gateway = registry.payment_gateways["echo"].factory(None, "merchant")
    assert (gateway.key, gateway.settings, gateway.merchant) == ("echo", None, "merchant")
    assert {"nmi", "sandbox"} <= set(registry.payment_gateways)  # core's own, added by the registry


def test_two_plugins_cannot_claim_the_same_event_type(portal_platform: Platform) -> None:
    import support.example_plugin

    rival = types.ModuleType("rival")

    class Payload:
        pass

    rival.portal_event_types = hookimpl(  # type: ignore[attr-defined]
        lambda: [EventType(name="example.note_written", payload=Payload)]  # type: ignore[arg-type]
    )
    manager = create_plugin_manager(
        load_plugins=(), extra_plugins=[("example", support.example_plugin), ("rival", rival)]
    )
    with pytest.raises(PluginLoadError, match="'example.note_written' is provided by both"):
        PluginRegistry(manager)


def test_settings_are_validated_against_the_plugins_struct(portal_platform: Platform) -> None:
    registry = portal_platform.registry
    assert registry.validate_settings("example", {"greeting": "Hi"}).greeting == "Hi"  # type: ignore[union-attr]
    with pytest.raises(SettingsError, match="plugin 'example' settings: Expected `int`"):
        registry.validate_settings("example", {"max_items": "3"})
    with pytest.raises(SettingsError, match="Object contains unknown field `colour`"):
        registry.validate_settings("example", {"colour": "red"})
    with pytest.raises(SettingsError, match="not installed"):
        registry.validate_settings("nope", {})


def test_task_modules_are_imported_for_the_worker(portal_platform: Platform) -> None:
    from taskiq import async_shared_broker

    assert "example.count_notes" in async_shared_broker.get_all_tasks()
    assert "portal.process_due_work" in async_shared_broker.get_all_tasks()


@pytest.mark.parametrize(
    ("flow", "problem"),
    [
        ({"name": "Bad Name", "path": "/x"}, "lower-case letters"),
        ({"name": "cancel", "path": "x"}, "starting with /"),
        ({"name": "cancel", "path": "/s/{id}", "parameter": "Order", "parameter_prefix": "ord"}, "lower-case letters"),
        ({"name": "cancel", "path": "/s/{id}", "parameter": "subscription"}, "parameter_prefix"),
        ({"name": "cancel", "path": "/s/{id}"}, "no parameter"),
    ],
)
def test_link_flows_are_checked_when_registered(flow: dict, problem: str) -> None:
    from portal.plugin import LinkFlow

    plugin = types.ModuleType("flows")
    plugin.portal_link_flows = hookimpl(lambda: [LinkFlow(**flow)])  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError, match=problem):
        PluginRegistry(create_plugin_manager(load_plugins=(), extra_plugins=[("flows", plugin)]))


def test_a_flow_about_an_object_needs_its_whole_id() -> None:
    from portal.access.flows import FlowError, encode_flow
    from portal.ids import new_id
    from portal.plugin import LinkFlow

    flow = LinkFlow(name="subscription_cancel", path="/s/{id}/cancel", parameter="subscription", parameter_prefix="sub")
    sub = new_id("sub")
    assert encode_flow(flow, sub) == f"subscription_cancel:{sub}"
    for wrong in (None, "sub_short", new_id("inv")):
        with pytest.raises(FlowError):
            encode_flow(flow, wrong)


async def test_a_plugin_purpose_issues_links_that_land_on_its_flow(shared_tenants: Platform, portal_client) -> None:
    from datetime import timedelta

    from portal.access.links import issue_link
    from portal.db.engine import tenant_transaction
    from portal.testing import customer_id

    tenant = await shared_tenants.tenants.resolve("t-greenfield.portal.localhost")
    assert tenant is not None
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    async with tenant_transaction(tenant.merchant.iso_id):
        link = await issue_link(shared_tenants.settings, tenant, jane, purpose="example_reminder")
        with pytest.raises(ValueError, match="at most 259200 seconds"):
            await issue_link(
                shared_tenants.settings, tenant, jane, purpose="example_reminder", expires_in=timedelta(days=4)
            )
        with pytest.raises(ValueError, match="no link purpose 'nope'"):
            await issue_link(shared_tenants.settings, tenant, jane, purpose="nope")
    assert link.expires_at - datetime.now(UTC) > timedelta(days=1, hours=23)
    client = portal_client("t-greenfield.portal.localhost")
    for _ in range(2):  # not single-use
        landed = await client.get(f"/access/{link.token}")
        assert landed.status_code == 303 and landed.headers["location"] == "/example"
