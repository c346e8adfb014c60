"""Subscriptions: customers see their plans and next charges, pause, resume, cancel and change them.

The subscriptions themselves are core's billing ledger (``portal.sdk.billing_subscriptions``):
this plugin is the customer's pages over it. Every action goes through the ledger's functions,
which emit the ``subscription.*`` events (audit record and webhooks) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from portal.sdk import (
    N_,
    LinkFlow,
    MerchantView,
    NavItem,
    PageContext,
    PluginInfo,
    RouteSet,
    Tenant,
    Widget,
    hookimpl,
    ngettext,
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_subscriptions import store
from portal_subscriptions.routes import SUBSCRIPTION_ROUTES
from portal_subscriptions.settings import SubscriptionsSettings
from portal_subscriptions.views import formats_for, widget_data

HERE = Path(__file__).resolve().parent
KEY = "subscriptions"

__all__ = ["SubscriptionsSettings"]


@hookimpl
def portal_plugin_info() -> PluginInfo:
    """Subscriptions."""
    return PluginInfo(
        key=KEY,
        title="Subscriptions",
        description="Customers see their plans and next charges, and pause, resume, cancel or change them.",
        settings=SubscriptionsSettings,
        templates=HERE / "templates",
        static=HERE / "static",
    )


@hookimpl
def portal_routes() -> RouteSet:
    """The pages under ``/subscriptions``."""
    return RouteSet(handlers=SUBSCRIPTION_ROUTES)


@hookimpl
def portal_link_flows() -> list[LinkFlow]:
    """Deep links into one subscription: cancel it, change it, pause it (as Stripe's ``flow_data``)."""
    return [
        LinkFlow(
            name="subscription_cancel", path="/subscriptions/{id}/cancel", title="Cancel a subscription",
            parameter="subscription", parameter_prefix="sub",
        ),
        LinkFlow(
            name="subscription_update", path="/subscriptions/{id}/change", title="Change a subscription",
            parameter="subscription", parameter_prefix="sub",
        ),
        LinkFlow(
            name="subscription_pause", path="/subscriptions/{id}/pause", title="Pause a subscription",
            parameter="subscription", parameter_prefix="sub",
        ),
    ]  # fmt: skip


@hookimpl
def portal_nav_items(context: PageContext) -> list[NavItem]:
    """*Subscriptions* in the navigation."""
    return [NavItem(label=N_("Subscriptions"), href="/subscriptions", order=30, key=KEY)]  # translated by the nav


async def load_widget(context: PageContext) -> dict[str, Any]:
    """How many subscriptions are active, and the next charge."""
    customer = context.customer
    if customer is None:
        return {"active": 0, "paused": 0, "total": 0, "next": None}
    async with tenant_transaction(context.iso_id):  # joins the Overview's transaction
        subs = await store.subscriptions_of(context.merchant, customer.id)
    return widget_data(subs, formats_for(context.merchant.timezone))


@hookimpl
def portal_overview_widgets(context: PageContext) -> list[Widget]:
    """The *Subscriptions* block on the Overview."""
    return [Widget(key=KEY, title=_("Subscriptions"), template="subscriptions/widget.html", load=load_widget, order=30)]


@hookimpl
def portal_cards_card_required(merchant: MerchantView, customer_id: str) -> Awaitable[str | None]:
    """A customer with a subscription that has not ended keeps a card on file (the cards plugin asks)."""
    return _card_required(merchant, customer_id)


async def _card_required(merchant: MerchantView, customer_id: str) -> str | None:
    async with tenant_transaction(merchant.iso_id):  # joins the caller's, or opens one where it has none
        return await store.card_required_reason(merchant, customer_id)


@hookimpl
async def portal_account_summary(tenant: Tenant, customer_id: str) -> str | None:
    """``2 subs`` on the merchant switch page (nothing without a subscription that has not ended)."""
    async with tenant_transaction(tenant.merchant.iso_id):
        live = await store.live_count(tenant.merchant, customer_id)
    if not live:
        return None
    return ngettext("%(count)d sub", "%(count)d subs", live) % {"count": live}
