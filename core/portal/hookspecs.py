"""Every hook a plugin or theme can implement, grouped by phase.

Start-up hooks are synchronous and return frozen Structs from :mod:`portal.plugin`. Per-request
hooks are called only for plugins that are on for the current merchant. Each hook has a section
in ``docs/plugin_hooks.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pluggy

from portal.plugin import (
    PROJECT_NAME,
    ActivityDescription,
    ApiRouteSet,
    CliCommand,
    EventHandler,
    EventType,
    LinkFlow,
    LinkPurpose,
    NavItem,
    PaymentGateway,
    PiccoloApp,
    PluginInfo,
    RouteSet,
    ScheduledJob,
    ThemeSpec,
    Widget,
)

if TYPE_CHECKING:
    from portal.tenancy.context import PageContext
    from portal.tenancy.models import Tenant

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

# --- Registration ---------------------------------------------------------------------------


@hookspec(historic=True)
def portal_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Add hookspecs of your own with ``pluginmanager.add_hookspecs(module)``."""


@hookspec
def portal_plugin_info() -> PluginInfo | None:
    """Describe the plugin: key, title, settings Struct, template and static folders.

    Every feature plugin implements it; a theme-only package does not.
    """


# --- Start-up -------------------------------------------------------------------------------


@hookspec
def portal_routes() -> RouteSet | None:
    """Route handlers the plugin serves on merchant hosts (404 where it is off)."""


@hookspec
def portal_piccolo_apps() -> PiccoloApp | None:
    """The plugin's piccolo app: tables and migrations, migrated by ``portal migrate``."""


@hookspec
def portal_event_types() -> list[EventType] | None:
    """Domain event types the plugin emits."""


@hookspec
def portal_activity_descriptions() -> list[ActivityDescription] | None:
    """Words for the plugin's event types in the Overview's *Recent activity* (where the plugin is on)."""


@hookspec
def portal_event_handlers() -> list[EventHandler] | None:
    """Handlers the worker runs for events (``invoice.payment_failed`` → payment recovery)."""


@hookspec
def portal_api_routes() -> ApiRouteSet | None:
    """Handlers served under ``/api/v1`` (API host and merchant hosts), and the key scopes they check."""


@hookspec
def portal_scheduled_jobs() -> list[ScheduledJob] | None:
    """Jobs a worker runs every interval, one worker per run."""


@hookspec
def portal_task_modules() -> list[str] | None:
    """Dotted module paths declaring durable tasks (or taskiq tasks); every process imports them."""


@hookspec
def portal_themes() -> list[ThemeSpec] | None:
    """Themes this package provides."""


@hookspec
def portal_link_flows() -> list[LinkFlow] | None:
    """Tasks a portal link can open directly, such as ``payment_method_update``."""


@hookspec
def portal_link_purposes() -> list[LinkPurpose] | None:
    """What signed links can be for besides ``portal`` (``update_payment``), with their lifetimes."""


@hookspec
def portal_cli_commands() -> list[CliCommand] | None:
    """Commands added to the ``portal`` command line."""


@hookspec
def portal_payment_gateways() -> list[PaymentGateway] | None:
    """Payment gateway adapters merchants can choose."""


# --- Per request (only plugins on for the current merchant) --------------------------------


@hookspec
def portal_nav_items(context: PageContext) -> list[NavItem] | None:
    """Links for the portal navigation."""


@hookspec
def portal_header_partials(context: PageContext) -> list[str] | None:
    """Templates rendered in the page header's account area for a signed-in customer (a short line each)."""


@hookspec
def portal_overview_widgets(context: PageContext) -> list[Widget] | None:
    """Blocks for the Overview page; each loads its data before the page renders."""


@hookspec
def portal_template_vars(context: PageContext, template: str) -> dict[str, Any] | None:
    """Extra variables for a page about to render ``template``."""


@hookspec
def portal_before_page(context: PageContext) -> Awaitable[None] | None:
    """Async work before a signed-in customer's request is handled (warm what template vars read)."""


@hookspec
def portal_account_summary(tenant: Tenant, customer_id: str) -> Awaitable[str | None] | None:
    """A few words on a customer's account at ``tenant`` ("2 subs", "1 invoice due"), or ``None``."""


@hookspec
def portal_other_merchants_counts(tenant: Tenant, emails: list[str]) -> Awaitable[dict[str, int]] | None:
    """For normalised emails of ``tenant``'s customers: how many other merchants they can switch to."""
