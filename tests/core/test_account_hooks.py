"""The per-request hooks behind the merchant switch reach only the plugins on for the merchant asked about."""

from __future__ import annotations

import types
from typing import Any

from portal.plugin import PluginInfo, hookimpl
from portal.plugins.manager import create_plugin_manager
from portal.plugins.registry import PluginRegistry
from portal.tenancy.models import Brand, MerchantView, Tenant


def tenant(*enabled: str) -> Tenant:
    merchant = MerchantView(
        id="mer_1", iso_id="iso_1", slug="shop", name="Shop", timezone="UTC", locale="en", theme_key="base",
        brand=Brand(color="#2f5bea", contrast_color="#ffffff"),
    )  # fmt: skip
    return Tenant(merchant=merchant, plugin_settings=dict.fromkeys(enabled))


def registry(calls: list[str]) -> PluginRegistry:
    plugins = []
    for name, words, count in (("alpha", "2 subs", 1), ("beta", None, 2), ("gamma", "1 invoice due", None)):
        plugin = types.ModuleType(name)
        plugin.portal_plugin_info = hookimpl(lambda name=name: PluginInfo(key=name, title=name))  # type: ignore[attr-defined]

        async def before(context: Any, name: str = name) -> None:
            calls.append(name)

        async def summary(tenant: Tenant, customer_id: str, words: str | None = words) -> str | None:
            return words

        async def counts(tenant: Tenant, emails: list[str], count: int | None = count) -> dict[str, int]:
            return dict.fromkeys(emails, count or 0)

        plugin.portal_before_page = hookimpl(before)  # type: ignore[attr-defined]
        plugin.portal_account_summary = hookimpl(summary)  # type: ignore[attr-defined]
        if count is not None:
            plugin.portal_other_merchants_counts = hookimpl(counts)  # type: ignore[attr-defined]
        plugins.append((name, plugin))
    return PluginRegistry(create_plugin_manager(load_plugins=(), extra_plugins=plugins))


async def test_before_page_awaits_the_enabled_plugins_only() -> None:
    calls: list[str] = []
    await registry(calls).before_page(object(), frozenset({"alpha", "gamma"}))
    assert sorted(calls) == ["alpha", "gamma"]


async def test_the_account_summary_comes_from_the_plugins_on_at_that_merchant() -> None:
    found = registry([])
    assert await found.account_summary(tenant("alpha", "beta", "gamma"), "cus_1") == ["2 subs", "1 invoice due"]
    assert await found.account_summary(tenant("gamma"), "cus_1") == ["1 invoice due"]
    assert await found.account_summary(tenant(), "cus_1") == []


async def test_other_merchant_counts_are_none_where_no_plugin_gives_them() -> None:
    found = registry([])
    assert await found.other_merchants_counts(tenant("gamma"), ["a@b.co"]) is None
    assert await found.other_merchants_counts(tenant("alpha"), ["a@b.co"]) == {"a@b.co": 1}
    assert await found.other_merchants_counts(tenant("alpha", "beta"), ["a@b.co", "c@d.co"]) == {
        "a@b.co": 3,
        "c@d.co": 3,
    }
