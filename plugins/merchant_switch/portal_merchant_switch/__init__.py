"""Merchant switch: a customer with records at several merchants of one ISO moves between their portals.

Siblings are found by normalised email inside the ISO (row-level security keeps the lookup
there); every switch mints a fresh one-use ``switch`` link signed with the target merchant's key
and bound to the customer there, and records ``customer.switched_out`` and
``customer.switched_in`` in each merchant's own audit chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portal.sdk import (
    ApiRouteSet,
    EventType,
    LinkPurpose,
    PageContext,
    PiccoloApp,
    PluginInfo,
    RouteSet,
    Tenant,
    hookimpl,
    normalize_email,
    tenant_transaction,
)
from portal_merchant_switch import header, siblings
from portal_merchant_switch.api import API_ROUTES, SCOPES
from portal_merchant_switch.events import EVENT_TYPES
from portal_merchant_switch.landing import SWITCH_PURPOSE
from portal_merchant_switch.routes import SWITCH_ROUTES
from portal_merchant_switch.settings import KEY, MerchantSwitchSettings

HERE = Path(__file__).resolve().parent

__all__ = ["MerchantSwitchSettings"]


@hookimpl
def portal_plugin_info() -> PluginInfo:
    """Merchant switch."""
    return PluginInfo(
        key=KEY,
        title="Merchant switch",
        description="Customers of several merchants of one ISO switch between their portals.",
        settings=MerchantSwitchSettings,
        templates=HERE / "templates",
        static=HERE / "static",
    )


@hookimpl
def portal_piccolo_apps() -> PiccoloApp:
    """Switch records and ISO policies."""
    return PiccoloApp(module="portal_merchant_switch.piccolo_app")


@hookimpl
def portal_routes() -> RouteSet:
    """``/switch`` and ``/switch/{merchant_id}``."""
    return RouteSet(handlers=SWITCH_ROUTES)


@hookimpl
def portal_api_routes() -> ApiRouteSet:
    """Other merchants of a customer (merchant keys), overlaps and the disclosure policy (ISO keys)."""
    return ApiRouteSet(handlers=API_ROUTES, scopes=SCOPES)


@hookimpl
def portal_event_types() -> list[EventType]:
    """``customer.switched_out`` and ``customer.switched_in``."""
    return EVENT_TYPES


@hookimpl
def portal_link_purposes() -> list[LinkPurpose]:
    """``switch``: one use, a minute, lands through :func:`portal_merchant_switch.landing.on_landing`."""
    return [SWITCH_PURPOSE]


@hookimpl
async def portal_before_page(context: PageContext) -> None:
    """Have the header line's count at hand (cached; one query on a miss)."""
    if context.customer is not None:
        await header.warm(context.iso_id, normalize_email(context.customer.email))


@hookimpl
def portal_header_partials(context: PageContext) -> list[str]:
    """The header line "You have accounts at N other merchants" (empty when N is 0)."""
    return ["merchant_switch/header_line.html"]


@hookimpl
def portal_template_vars(context: PageContext, template: str) -> dict[str, Any]:
    """``merchant_switch_others``: the header line's count (0 hides it)."""
    if context.customer is None:
        return {}
    email = normalize_email(context.customer.email)
    return {"merchant_switch_others": header.other_count(context.iso_id, email, context.merchant.id)}


@hookimpl
async def portal_other_merchants_counts(tenant: Tenant, emails: list[str]) -> dict[str, int]:
    """``other_merchants_count`` of the merchant API's customer records."""
    async with tenant_transaction(tenant.merchant.iso_id):
        return await siblings.counts(tenant.merchant.iso_id, tenant.merchant.id, emails)
