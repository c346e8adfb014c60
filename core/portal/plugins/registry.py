"""What core and the loaded plugins provide, collected once at start-up and keyed by plugin.

Core's own event types and payment gateways are added here directly (owner :data:`CORE`), before
the plugins'; the plugin manager only loads plugins.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import msgspec
import pluggy

from portal.activity.ledger import CORE_ACTIVITY
from portal.billing.events import BILLING_EVENT_TYPES
from portal.events.core_types import CORE_EVENT_TYPES
from portal.payments.builtin import BUILTIN_GATEWAYS
from portal.plugin import (
    ActivityDescription,
    ApiRouteSet,
    ApiScope,
    CliCommand,
    EventHandler,
    EventType,
    LinkFlow,
    LinkPurpose,
    NavItem,
    PaymentGateway,
    PluginInfo,
    RouteSet,
    ScheduledJob,
    ThemeSpec,
    Widget,
)
from portal.plugins.manager import PluginLoadError

T = TypeVar("T")

CORE = "portal-core"
"""The owner named for core's built-ins when a plugin provides the same key."""


class SettingsError(ValueError):
    """Plugin settings failed validation; the message names the plugin and the field."""


CORE_PURPOSES = (
    LinkPurpose(name="portal", title="Sign in", default_ttl=timedelta(hours=1), max_ttl=timedelta(days=1)),
)
"""Link purposes core provides; plugins add theirs with ``portal_link_purposes``."""
CORE_SCOPES = (
    ApiScope(name="customers:read", description="Read customers."),
    ApiScope(name="customers:write", description="Create and change customers."),
    ApiScope(name="portal_sessions:write", description="Open the portal for a customer (mint portal links)."),
    ApiScope(name="portal_links:write", description="Revoke portal links."),
    ApiScope(name="webhooks:read", description="Read webhook endpoints and deliveries."),
    ApiScope(name="webhooks:write", description="Create, change, rotate and delete webhook endpoints; replay."),
    ApiScope(name="audit:read", description="Read and export the audit trail."),
    ApiScope(name="billing:read", description="Read products, prices, subscriptions, invoices and payment methods."),
    ApiScope(name="billing:write", description="Create and change products, prices, subscriptions and invoices; pay."),
)
"""API key scopes core's own routes check."""
_NAME = re.compile(r"[a-z][a-z0-9_]{0,59}")
_SCOPE = re.compile(r"[a-z][a-z0-9_]{0,39}:[a-z][a-z0-9_]{0,39}")


def _flow_problem(flow: LinkFlow) -> str | None:
    if not re.fullmatch(r"[a-z_]{1,60}", flow.name):
        return "needs a name of lower-case letters and underscores"
    if not flow.path.startswith("/"):
        return "needs a path starting with /"
    if flow.parameter is None:
        return None if "{id}" not in flow.path else "has {id} in its path but no parameter"
    if not _NAME.fullmatch(flow.parameter):
        return f"has parameter {flow.parameter!r}; use lower-case letters, digits and underscores"
    if not re.fullmatch(r"[a-z]{2,8}", flow.parameter_prefix) or "{id}" not in flow.path:
        return "with a parameter needs a parameter_prefix (e.g. 'sub') and {id} in its path"
    return None


def _purpose_problem(purpose: LinkPurpose) -> str | None:
    if not re.fullmatch(r"[a-z_]{1,40}", purpose.name):
        return "needs a name of lower-case letters and underscores (at most 40)"
    if not timedelta(0) < purpose.default_ttl <= purpose.max_ttl:
        return "needs 0 < default_ttl <= max_ttl"
    return None


class PluginRegistry:
    """Start-up hook results by plugin key, and callers for the per-request hooks."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self._subset_callers: dict[tuple[str, frozenset[str]], Any] = {}
        self.plugins: dict[str, PluginInfo] = {}
        for name, info in self._per_plugin("portal_plugin_info"):
            if not isinstance(info, PluginInfo):
                raise PluginLoadError(f"plugin {name!r}: portal_plugin_info must return PluginInfo")
            if info.key != name:
                raise PluginLoadError(f"plugin {name!r} declares key {info.key!r}; they must match")
            self.plugins[info.key] = info
        self.routes: dict[str, RouteSet] = dict(self._per_plugin("portal_routes"))
        self.piccolo_apps: list[str] = [app.module for _, app in self._per_plugin("portal_piccolo_apps")]
        self.event_types: dict[str, EventType] = self._unique(
            "portal_event_types", "name", (*CORE_EVENT_TYPES, *BILLING_EVENT_TYPES)
        )
        self.activity: dict[str, tuple[str, ActivityDescription]] = self._activity()
        """Event type to (describing plugin key, or ``core``; its description) for *Recent activity*."""
        self._described: dict[frozenset[str], dict[str, ActivityDescription]] = {}
        self.link_purposes: dict[str, LinkPurpose] = {p.name: p for p in CORE_PURPOSES}
        """Purpose name to purpose: core's ``portal`` and every plugin's."""
        self.purpose_owners: dict[str, str] = {}
        """Purpose name to the key of the plugin declaring it (core's purposes are not listed)."""
        for plugin_name, purposes in self._per_plugin("portal_link_purposes"):
            for purpose in purposes:
                problem = _purpose_problem(purpose)
                if problem or purpose.name in self.link_purposes:
                    reason = problem or "is declared twice"
                    raise PluginLoadError(f"plugin {plugin_name!r}: link purpose {purpose.name!r} {reason}")
                self.link_purposes[purpose.name] = purpose
                self.purpose_owners[purpose.name] = plugin_name
        self.api_routes: dict[str, ApiRouteSet] = dict(self._per_plugin("portal_api_routes"))
        self.api_scopes: dict[str, ApiScope] = {scope.name: scope for scope in CORE_SCOPES}
        """Every scope an API key can carry: core's and those plugins declare with their API routes."""
        for plugin_name, route_set in self.api_routes.items():
            for scope in route_set.scopes:
                if not _SCOPE.fullmatch(scope.name) or scope.name in self.api_scopes:
                    reason = "is declared twice" if scope.name in self.api_scopes else "must read like 'notes:read'"
                    raise PluginLoadError(f"plugin {plugin_name!r}: API scope {scope.name!r} {reason}")
                self.api_scopes[scope.name] = scope
        self.scheduled_jobs: dict[str, ScheduledJob] = self._unique("portal_scheduled_jobs", "name")
        for name, job in self.scheduled_jobs.items():
            if job.every <= timedelta(0):
                raise PluginLoadError(f"scheduled job {name!r} needs a positive interval")
        self.event_handlers: dict[str, tuple[str, EventHandler]] = {}
        """``<plugin>.<handler name>`` to (plugin key, handler)."""
        for plugin_name, handlers in self._per_plugin("portal_event_handlers"):
            for handler in handlers:
                self.event_handlers[f"{plugin_name}.{handler.name}"] = (plugin_name, handler)
                unknown = sorted(set(handler.event_types) - set(self.event_types))
                if unknown:
                    raise PluginLoadError(
                        f"plugin {plugin_name!r}: handler {handler.name!r} listens to unknown events {unknown}"
                    )
        self.task_modules: list[str] = [m for _, mods in self._per_plugin("portal_task_modules") for m in mods]
        self.themes: dict[str, ThemeSpec] = self._unique("portal_themes", "key")
        self.cli_commands: list[CliCommand] = [c for _, cmds in self._per_plugin("portal_cli_commands") for c in cmds]
        self.payment_gateways: dict[str, PaymentGateway] = self._unique(
            "portal_payment_gateways", "key", BUILTIN_GATEWAYS
        )
        self.link_flows: dict[str, tuple[str, LinkFlow]] = {}
        """Flow name to (owning plugin key, flow)."""
        for plugin_name, flows in self._per_plugin("portal_link_flows"):
            for flow in flows:
                problem = _flow_problem(flow)
                if problem:
                    raise PluginLoadError(f"plugin {plugin_name!r}: link flow {flow.name!r} {problem}")
                if flow.name in self.link_flows:
                    owner = self.link_flows[flow.name][0]
                    raise PluginLoadError(f"link flow {flow.name!r} is provided by both {owner!r} and {plugin_name!r}")
                self.link_flows[flow.name] = (plugin_name, flow)

    # --- start-up -----------------------------------------------------------------------

    def _per_plugin(self, hook_name: str) -> Iterator[tuple[str, Any]]:
        """Call a start-up hook on each implementing plugin; yield (plugin name, result)."""
        caller = getattr(self.manager.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            try:
                result = impl.function()
            except Exception as exc:
                raise PluginLoadError(f"plugin {impl.plugin_name!r}: {hook_name} failed: {exc}") from exc
            if result is not None:
                yield impl.plugin_name, result

    def _unique(self, hook_name: str, attribute: str, builtin: Iterable[Any] = ()) -> dict[str, Any]:
        """Items of ``hook_name`` by ``attribute``, core's ``builtin`` first; a key provided twice fails."""
        found: dict[str, Any] = {getattr(item, attribute): item for item in builtin}
        owners: dict[str, str] = dict.fromkeys(found, CORE)
        for plugin_name, items in self._per_plugin(hook_name):
            for item in items:
                key = getattr(item, attribute)
                if key in found:
                    raise PluginLoadError(
                        f"{hook_name}: {key!r} is provided by both {owners[key]!r} and {plugin_name!r}"
                    )
                found[key] = item
                owners[key] = plugin_name
        return found

    def _activity(self) -> dict[str, tuple[str, ActivityDescription]]:
        """Core's descriptions of its events, then each plugin's; an event type described twice fails."""
        found: dict[str, tuple[str, ActivityDescription]] = {d.event_type: (CORE, d) for d in CORE_ACTIVITY}
        for plugin_name, descriptions in self._per_plugin("portal_activity_descriptions"):
            for description in descriptions:
                name = description.event_type
                if name not in self.event_types:
                    raise PluginLoadError(f"plugin {plugin_name!r}: describes unknown event type {name!r}")
                if name in found:
                    owner = found[name][0]
                    raise PluginLoadError(f"event type {name!r} is described by both {owner!r} and {plugin_name!r}")
                found[name] = (plugin_name, description)
        return found

    def activity_descriptions(self, enabled: frozenset[str]) -> dict[str, ActivityDescription]:
        """Event type to description, core's and those of the plugins that are on (cached per set)."""
        described = self._described.get(enabled)
        if described is None:
            described = {
                name: description
                for name, (owner, description) in self.activity.items()
                if owner == CORE or owner in enabled
            }
            self._described[enabled] = described
        return described

    # --- settings -----------------------------------------------------------------------

    def validate_settings(self, key: str, raw: Mapping[str, Any] | None) -> msgspec.Struct | None:
        """Validate a merchant's settings for plugin ``key``; raise :class:`SettingsError`."""
        info = self.plugins.get(key)
        if info is None:
            raise SettingsError(f"plugin {key!r} is not installed")
        if info.settings is None:
            if raw:
                raise SettingsError(f"plugin {key!r} takes no settings")
            return None
        try:
            return msgspec.convert(dict(raw or {}), info.settings, strict=True)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"plugin {key!r} settings: {exc}") from exc

    # --- per request --------------------------------------------------------------------

    def hook_for(self, hook_name: str, enabled: frozenset[str]) -> Any:
        """A caller for ``hook_name`` that reaches only enabled plugins and theme packages."""
        disabled = frozenset(key for key in self.plugins if key not in enabled)
        if not disabled:
            return getattr(self.manager.hook, hook_name)
        cache_key = (hook_name, disabled)
        caller = self._subset_callers.get(cache_key)
        if caller is None:
            plugins = [self.manager.get_plugin(name) for name in disabled]
            caller = self.manager.subset_hook_caller(hook_name, remove_plugins=[p for p in plugins if p])
            self._subset_callers[cache_key] = caller
        return caller

    def nav_items(self, context: Any, enabled: frozenset[str]) -> list[NavItem]:
        """Navigation items from enabled plugins, sorted by order then label."""
        results = self.hook_for("portal_nav_items", enabled)(context=context)
        items = [item for batch in results if batch for item in batch]
        return sorted(items, key=lambda item: (item.order, item.label))

    def header_partials(self, context: Any, enabled: frozenset[str]) -> list[str]:
        """Header templates from enabled plugins, in plugin order."""
        results = self.hook_for("portal_header_partials", enabled)(context=context)
        return [template for batch in reversed(results) if batch for template in batch]

    def widgets(self, context: Any, enabled: frozenset[str]) -> list[Widget]:
        """Overview widgets from enabled plugins, sorted by order then key."""
        results = self.hook_for("portal_overview_widgets", enabled)(context=context)
        items = [widget for batch in results if batch for widget in batch]
        return sorted(items, key=lambda widget: (widget.order, widget.key))

    def template_vars(self, context: Any, template: str, enabled: frozenset[str]) -> dict[str, Any]:
        """Extra template variables from enabled plugins (later plugins do not override earlier)."""
        merged: dict[str, Any] = {}
        for extra in self.hook_for("portal_template_vars", enabled)(context=context, template=template):
            for key, value in (extra or {}).items():
                merged.setdefault(key, value)
        return merged

    async def before_page(self, context: Any, enabled: frozenset[str]) -> None:
        """Await each enabled plugin's ``portal_before_page`` in turn."""
        for pending in self.hook_for("portal_before_page", enabled)(context=context):
            if pending is not None:
                await pending

    async def account_summary(self, tenant: Any, customer_id: str) -> list[str]:
        """The words plugins on at ``tenant`` give for a customer's account there, in plugin order."""
        calls = self.hook_for("portal_account_summary", tenant.enabled_plugins)(tenant=tenant, customer_id=customer_id)
        parts = [await pending for pending in reversed(calls) if pending is not None]
        return [part for part in parts if part]

    async def other_merchants_counts(self, tenant: Any, emails: list[str]) -> dict[str, int] | None:
        """Normalised email to its other-merchant count, or ``None`` when no plugin on at ``tenant`` says."""
        calls: list[Awaitable[dict[str, int]] | None] = self.hook_for(
            "portal_other_merchants_counts", tenant.enabled_plugins
        )(tenant=tenant, emails=emails)
        found = [await pending for pending in calls if pending is not None]  # one connection: one at a time
        if not found:
            return None
        return {email: sum(result.get(email, 0) for result in found) for email in emails}
