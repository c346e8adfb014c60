"""A plugin that is off for a merchant is invisible there: 404, no nav item, no widget."""

from __future__ import annotations

import re

from portal.platform import Platform
from portal.testing import apply_tenants

GREENFIELD = "t-greenfield.portal.localhost"  # example plugin on
PINNACLE = "t-pinnacle.portal.localhost"  # example plugin listed but off


async def test_plugin_route_answers_where_the_plugin_is_on(
    shared_tenants: Platform, portal_client, portal_sign_in
) -> None:
    client = portal_client(GREENFIELD)
    await portal_sign_in(client, "jane@globalco.com")
    response = await client.get("/example")
    assert response.status_code == 200
    assert "Good morning, Jane Cooper" in response.text
    assert "example-vars-for-example/page.html" in response.text


async def test_plugin_route_is_404_where_the_plugin_is_off(
    shared_tenants: Platform, portal_client, portal_sign_in
) -> None:
    client = portal_client(PINNACLE)
    await portal_sign_in(client, "jane@globalco.com")
    disabled = await client.get("/example")
    missing = await client.get("/no-such-page")
    assert disabled.status_code == 404
    assert missing.status_code == 404
    # Indistinguishable from a page that does not exist (apart from the per-response nonce and the
    # language switch's way back, which is the address asked for).
    strip = lambda text: re.sub(r"nonce(=\"|-)[A-Za-z0-9_-]+|name=\"next\" value=\"[^\"]*\"", "", text)  # noqa: E731
    assert strip(disabled.text) == strip(missing.text)


async def test_nav_item_and_widget_only_where_the_plugin_is_on(
    shared_tenants: Platform, portal_client, portal_sign_in
) -> None:
    on = portal_client(GREENFIELD)
    off = portal_client(PINNACLE)
    await portal_sign_in(on, "jane@globalco.com")
    await portal_sign_in(off, "jane@globalco.com")
    on_page = (await on.get("/")).text
    off_page = (await off.get("/")).text
    assert 'href="/example"' in on_page and "Example widget" in on_page
    assert "Example header line for jane@globalco.com" in on_page  # its header partial, with the page's context
    assert "Good morning, Jane Cooper" in on_page  # the widget loaded its data before rendering
    assert 'href="/example"' not in off_page and "Example widget" not in off_page
    assert "Example header line" not in off_page
    assert 'href="/payment-methods"' in off_page  # the plugins that are on there still show


async def test_a_merchant_with_no_plugins_shows_an_empty_overview(
    shared_tenants: Platform, portal_client, portal_sign_in, tmp_path
) -> None:
    toml = """
[[isos]]
slug = "t-bare-iso"
name = "Bare ISO"
[[isos.merchants]]
slug = "t-bare"
name = "Bare Shop"
[[isos.merchants.customers]]
email = "jane@globalco.com"
"""
    await apply_tenants(shared_tenants, toml, tmp_path)
    client = portal_client("t-bare.portal.localhost")
    await portal_sign_in(client, "jane@globalco.com")
    page = (await client.get("/")).text
    assert "Nothing to show here yet." in page
    assert 'class="site-nav"' in page and 'href="/payment-methods"' not in page


async def test_plugin_settings_are_per_merchant(shared_tenants: Platform) -> None:
    greenfield = await shared_tenants.tenants.resolve(GREENFIELD)
    apex = await shared_tenants.tenants.resolve("t-apex.portal.localhost")
    assert greenfield is not None and apex is not None
    assert greenfield.plugin_settings["example"].greeting == "Good morning"
    assert apex.plugin_settings["example"].greeting == "Hello"  # the Struct's default


async def test_a_failing_widget_does_not_take_the_page_down(
    shared_tenants: Platform, portal_client, portal_sign_in
) -> None:
    client = portal_client("t-apex.portal.localhost")
    await portal_sign_in(client, "jane@globalco.com")
    response = await client.get("/")
    assert response.status_code == 200
    assert "Broken widget" in response.text and "could not be loaded" in response.text
    assert "Hello, Jane Cooper" in response.text  # the next widget's query still ran


async def test_error_pages_say_what_happened(shared_tenants: Platform, portal_client) -> None:
    response = await portal_client(GREENFIELD).get("/example")
    assert response.status_code == 401
    assert "<h1" in response.text and "Sign-in needed" in response.text and "401" in response.text
    assert "Greenfield Bakery" in response.text  # branded: the host is a merchant's
    assert 'href="/login"' in response.text
    overview = await portal_client(PINNACLE).get("/")
    assert overview.status_code == 303 and overview.headers["location"] == "/login"


async def test_per_request_hooks_reach_only_enabled_plugins(shared_tenants: Platform) -> None:
    registry = shared_tenants.registry
    assert registry.nav_items(context=None, enabled=frozenset()) == []
    assert [item.key for item in registry.nav_items(context=None, enabled=frozenset({"example"}))] == ["example"]
    assert registry.template_vars(None, "x.html", frozenset()) == {}
    assert registry.header_partials(None, frozenset()) == []
    assert "example/header.html" in registry.header_partials(None, frozenset({"example"}))
