"""Payment recovery: a failed charge emails a signed update-your-card link, retries on a schedule, resumes on success.

It acts on the ledger's ``invoice.payment_failed`` (an event handler, so only where it is on),
keeps one recovery case per failed invoice, emails the dunning email and its reminders with
fresh ``update_payment`` links, charges soft declines again on the merchant's schedule, and, when
the customer saves a card in the cards plugin's update flow, charges every invoice in recovery
at once through the ledger's ``pay_invoices``. Every step is an audited event and a webhook.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from litestar import Request

from portal.sdk import (
    ApiRouteSet,
    CustomerView,
    EventHandler,
    EventType,
    MerchantView,
    PiccoloApp,
    PluginInfo,
    RouteSet,
    ScheduledJob,
    Tenant,
    hookimpl,
)
from portal_payment_recovery.api import READ, recovery_summary
from portal_payment_recovery.events import EVENT_TYPES
from portal_payment_recovery.handlers import EVENT_HANDLERS
from portal_payment_recovery.landing import failed_charges, retry_with_new_card
from portal_payment_recovery.pages import PAGES
from portal_payment_recovery.schedule import JOBS
from portal_payment_recovery.settings import KEY, RecoverySettings

HERE = Path(__file__).resolve().parent

__all__ = ["RecoverySettings"]


@hookimpl
def portal_plugin_info() -> PluginInfo:
    """Payment recovery."""
    return PluginInfo(
        key=KEY,
        title="Payment recovery",
        description="Dunning emails with a signed update-your-card link, scheduled retries, resume on success.",
        settings=RecoverySettings,
        templates=HERE / "templates",
    )


@hookimpl
def portal_piccolo_apps() -> PiccoloApp:
    """Recovery cases and their links."""
    return PiccoloApp(module="portal_payment_recovery.piccolo_app")


@hookimpl
def portal_routes() -> RouteSet:
    """The pages after a card update: paid, or declined."""
    return RouteSet(handlers=PAGES)


@hookimpl
def portal_api_routes() -> ApiRouteSet:
    """``GET /api/v1/recovery/summary`` (scope ``recovery:read``)."""
    return ApiRouteSet(handlers=[recovery_summary], scopes=[READ])


@hookimpl
def portal_event_types() -> list[EventType]:
    """The six ``recovery.*`` events: email sent, link opened, retry succeeded or failed, recovered, exhausted."""
    return EVENT_TYPES


@hookimpl
def portal_event_handlers() -> list[EventHandler]:
    """``invoice.payment_failed`` opens a case, ``invoice.paid`` or ``.voided`` closes one; link opens are noted."""
    return EVENT_HANDLERS


@hookimpl
def portal_task_modules() -> list[str]:
    """The emails and the case tasks."""
    return ["portal_payment_recovery.mail", "portal_payment_recovery.tasks"]


@hookimpl
def portal_scheduled_jobs() -> list[ScheduledJob]:
    """``payment_recovery.due``: queue the retries and reminders that fell due."""
    return JOBS


@hookimpl
def portal_cards_update_reason(merchant: MerchantView, customer_id: str) -> Awaitable[str | None]:
    """Name the charges in recovery on the cards plugin's update page."""
    return failed_charges(merchant, customer_id)


@hookimpl
def portal_cards_card_replaced(
    request: Request[Any, Any, Any], tenant: Tenant, customer: CustomerView, card_id: str, link_id: str | None
) -> Awaitable[str | None]:
    """Charge the invoices in recovery to the card just saved; the page that says how it went."""
    return retry_with_new_card(request, tenant, customer, card_id, link_id)
