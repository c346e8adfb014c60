"""Cards on file: customers add, remove and choose their default card.

Card numbers never reach the portal: the merchant's gateway hosts the card fields and vaults
the card; the portal keeps the vault reference, brand, last four digits and expiry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pluggy

from portal.sdk import (
    N_,
    ActivityDescription,
    EventType,
    LinkFlow,
    LinkPurpose,
    NavItem,
    PageContext,
    PiccoloApp,
    PluginInfo,
    RouteSet,
    Widget,
    hookimpl,
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_cards import hookspecs, store
from portal_cards.activity import DESCRIPTIONS
from portal_cards.events import EVENT_TYPES
from portal_cards.routes import CARD_ROUTES
from portal_cards.settings import CardsSettings
from portal_cards.views import card_view, today_for

HERE = Path(__file__).resolve().parent

__all__ = ["CardsSettings"]


@hookimpl
def portal_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Add ``portal_cards_card_required`` for plugins whose features need a card on file."""
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def portal_plugin_info() -> PluginInfo:
    """Cards on file."""
    return PluginInfo(
        key="cards",
        title="Cards on file",
        description="Customers add, remove and choose the default card; card data stays with the gateway.",
        settings=CardsSettings,
        templates=HERE / "templates",
        static=HERE / "static",
    )


@hookimpl
def portal_routes() -> RouteSet:
    """The card pages under ``/payment-methods``."""
    return RouteSet(handlers=CARD_ROUTES)


@hookimpl
def portal_piccolo_apps() -> PiccoloApp:
    """The plugin's migration history (its table moved to core: ``portal_payment_method``)."""
    return PiccoloApp(module="portal_cards.piccolo_app")


@hookimpl
def portal_event_types() -> list[EventType]:
    """``payment_method.added``, ``.removed`` and ``.default_changed``."""
    return EVENT_TYPES


@hookimpl
def portal_activity_descriptions() -> list[ActivityDescription]:
    """Cards added, removed and chosen as the default, in words for *Recent activity*."""
    return DESCRIPTIONS


@hookimpl
def portal_link_flows() -> list[LinkFlow]:
    """``payment_method_update``: where update-your-card links land."""
    return [LinkFlow(name="payment_method_update", path="/payment-methods/update", title=N_("Update your card"))]


@hookimpl
def portal_link_purposes() -> list[LinkPurpose]:
    """``update_payment`` links (emailed after a failed charge) last a week and work until the card is updated."""
    return [
        LinkPurpose(
            name="update_payment",
            title=N_("Update your card"),
            default_ttl=timedelta(days=7),
            max_ttl=timedelta(days=7),
            single_use=False,
            default_flow="payment_method_update",
        )
    ]


@hookimpl
def portal_nav_items(context: PageContext) -> list[NavItem]:
    """*Payment methods* in the navigation (the label is translated where the navigation is shown)."""
    return [NavItem(label=N_("Payment methods"), href="/payment-methods", order=40, key="cards")]


async def load_widget(context: PageContext) -> dict[str, Any]:
    """The default card, how many cards are on file and whether one needs attention."""
    customer = context.customer
    if customer is None:
        return {"cards": 0, "default": None, "attention": None}
    settings = context.plugin_settings("cards")
    async with tenant_transaction(context.iso_id):  # joins the Overview's transaction
        cards = await store.cards_on_file(context.merchant, customer.id)
    today = today_for(context.merchant, datetime.now(UTC))
    views = [card_view(card, today, settings.expiring_soon_days) for card in cards]
    default = next((view for view in views if view.is_default), None)
    attention = next((view for view in views if view.expired or view.expiring_soon), None)
    return {"cards": len(views), "default": default, "attention": attention}


@hookimpl
def portal_overview_widgets(context: PageContext) -> list[Widget]:
    """The *Payment methods* block on the Overview, titled in the request's language."""
    return [Widget(key="cards", title=_("Payment methods"), template="cards/widget.html", load=load_widget, order=40)]
