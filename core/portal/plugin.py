"""What plugin and theme authors import: the hook marker and the types hooks return.

Start-up hooks return frozen msgspec Structs from this module; per-request hooks receive a
:class:`PageContext`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pluggy

if TYPE_CHECKING:
    from litestar import Request

    from portal.access.tokens import Claims
    from portal.activity.formats import ActivityFormat
    from portal.tenancy.context import PageContext
    from portal.tenancy.models import Tenant

PROJECT_NAME = "portal"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Decorator marking a function as an implementation of a ``portal_*`` hook."""


class PluginInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Who a plugin is and how it is configured per merchant."""

    key: str
    """Stable key: the entry-point name, the template namespace and the settings key."""
    title: str
    description: str = ""
    settings: type[msgspec.Struct] | None = None
    """Struct validating this plugin's per-merchant settings; ``None`` when it has none."""
    templates: Path | None = None
    """Folder of templates, reachable as ``<key>/<name>``."""
    static: Path | None = None
    """Folder of static files, served at ``/static/plugins/<key>/``."""
    locale: Path | None = None
    """Folder of gettext catalogs (``<language>/LC_MESSAGES/messages.po``); by default ``locale``
    beside ``templates``."""


class RouteSet(msgspec.Struct, frozen=True, kw_only=True):
    """Litestar route handlers (functions, controllers or routers) a plugin serves.

    They answer only on merchant hosts where the plugin is on; elsewhere they are 404.
    """

    handlers: Sequence[Any]


class PiccoloApp(msgspec.Struct, frozen=True, kw_only=True):
    """A piccolo app (tables and migrations) by the dotted path of its ``piccolo_app`` module."""

    module: str


class NavItem(msgspec.Struct, frozen=True, kw_only=True):
    """A link in the portal navigation."""

    label: str
    href: str
    order: int = 100
    key: str = ""
    """Marks the item current when it equals the page's ``active_nav``."""


class Widget(msgspec.Struct, frozen=True, kw_only=True):
    """A block on the Overview page; ``load`` runs before rendering and feeds the template."""

    key: str
    title: str
    template: str
    load: Callable[[PageContext], Awaitable[dict[str, Any]]] | None = None
    order: int = 100


class EventType(msgspec.Struct, frozen=True, kw_only=True):
    """A domain event a plugin emits, with the Struct describing its payload."""

    name: str
    payload: type[msgspec.Struct]
    description: str = ""


class ActivityEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One audited event of the signed-in customer, as an activity describer receives it."""

    id: str
    type: str
    data: dict[str, Any]
    """The event's payload (``data.object`` of its webhook)."""
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    occurred_at: datetime
    actor_type: str
    related: dict[str, Any] = msgspec.field(default_factory=dict)
    """What core looked up with the event, in the same query: for events naming a subscription,
    ``product`` (its product's name) and ``nickname`` (its price's); for events naming an invoice
    by id (``subscription.renewed``), ``invoice_total``, ``invoice_currency`` and ``invoice_number``."""


class ActivityLine(msgspec.Struct, frozen=True, kw_only=True):
    """An event in words: ``Invoice INV-1042 paid`` · ``$1,240`` · ``Apr 4``."""

    text: str
    amount: str | None = None
    """Money already formatted (``ActivityFormat.money``), if the event is about an amount."""
    when: str | None = None
    """Replaces the event's date when given (``Due May 12``); else the day it happened is shown."""
    at: datetime | None = None
    """The time the line is about (a payment's, a renewal's), when it is not the event's own."""


class ActivityDescription(msgspec.Struct, frozen=True, kw_only=True):
    """How to describe one event type; ``describe`` returns ``None`` to leave an event out of the feed."""

    event_type: str
    describe: Callable[[ActivityEvent, ActivityFormat], ActivityLine | None]


class HandledEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An audited event as a plugin handler receives it in the worker."""

    id: str
    type: str
    iso_id: str
    merchant_id: str
    seq: int
    data: dict[str, Any]
    customer_id: str | None
    target_type: str | None
    target_id: str | None


class EventHandler(msgspec.Struct, frozen=True, kw_only=True):
    """Work a plugin does in the worker when events happen, for merchants where it is on.

    ``handle`` runs inside the merchant's tenant transaction. A handler that raises is retried
    later; others are not affected. Handlers must be idempotent (they may run twice).
    """

    name: str
    event_types: frozenset[str]
    handle: Callable[[HandledEvent], Awaitable[None]]


class ThemeSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A theme: templates and static files, optionally on top of a parent theme."""

    key: str
    title: str
    templates: Path
    static: Path | None = None
    parent: str | None = "base"
    """Theme this one falls back to; ``None`` only for ``base``."""
    locale: Path | None = None
    """Folder of gettext catalogs; by default ``locale`` beside ``templates``."""


class CliCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A click command added under ``portal``."""

    command: Any


class LinkFlow(msgspec.Struct, frozen=True, kw_only=True):
    """A task a portal link can open directly (``flow`` of a portal session).

    ``path`` is where the link lands, with ``{id}`` replaced by the target's id when the flow
    takes one (``parameter``, for example ``subscription`` with ids prefixed ``sub``). The id is
    bound into the signed token, so the link opens that object and no other.
    """

    name: str
    path: str
    title: str = ""
    parameter: str | None = None
    """What the flow is about (any lower-case name, e.g. ``invoice``); ``None``: about nothing."""
    parameter_prefix: str = ""
    """Prefix of the ids it takes (``inv`` for ``inv_...``); required with ``parameter``."""


class LinkPurpose(msgspec.Struct, frozen=True, kw_only=True):
    """What a signed link is for, with its lifetime; ``portal`` is core's, plugins add their own.

    A link of this purpose lives ``default_ttl`` unless its issuer asks for less, never more
    than ``max_ttl`` (a token claiming longer is refused). A ``single_use`` link opens the portal
    once; otherwise it works until it expires or its task is done (``fulfil_link``). A link that
    names no flow lands on ``default_flow`` when the merchant has that flow's plugin on.
    """

    name: str
    default_ttl: timedelta
    max_ttl: timedelta
    single_use: bool = True
    default_flow: str | None = None
    title: str = ""
    on_landing: Callable[[Request[Any, Any, Any], Tenant, Claims], Awaitable[None]] | None = None
    """Runs when a link of this purpose opens a session, inside that transaction (after the
    session and its ``portal_session.started`` record); raising ``LinkRefusedError`` refuses the
    link and rolls the session back. A purpose a plugin declares is only honoured on merchants
    where that plugin is on."""


class ApiScope(msgspec.Struct, frozen=True, kw_only=True):
    """A permission an API key can carry (``loyalty:read``); keys are created with chosen scopes."""

    name: str
    description: str


class ApiRouteSet(msgspec.Struct, frozen=True, kw_only=True):
    """Litestar route handlers a plugin serves under ``/api/v1``, and the scopes they check.

    The handlers are mounted on the API host and on merchant hosts, authenticated like core's
    (a ``principal`` dependency), documented in the OpenAPI document and answered with problem
    documents. A handler finds the merchant it acts on with ``portal.sdk.api_merchant``, which
    checks the scope and answers 404 where the plugin is off.
    """

    handlers: Sequence[Any]
    scopes: Sequence[ApiScope] = ()


class ScheduledJob(msgspec.Struct, frozen=True, kw_only=True):
    """Work run every ``every`` by one worker at a time (a PostgreSQL lease, not a clock per worker).

    ``run(platform)`` spans ISOs: list them with ``portal.sdk.iso_ids()`` and work inside one
    ``tenant_transaction`` per ISO. A run that raises is logged and the job runs again next time.
    """

    name: str
    every: timedelta
    run: Callable[[Any], Awaitable[object]]


class PaymentGateway(msgspec.Struct, frozen=True, kw_only=True):
    """A payment gateway adapter, chosen per merchant (``[isos.merchants.gateway]``).

    ``factory(settings, merchant)`` builds the merchant's adapter, an object implementing
    :class:`portal.payments.gateway.PaymentGatewayAdapter`, from its validated ``settings``
    Struct (``None`` when the gateway takes none) and its :class:`MerchantView`.
    """

    key: str
    title: str
    factory: Callable[[Any, Any], Any]
    settings: type[msgspec.Struct] | None = None
    """Struct validating the merchant's credentials and options for this gateway."""
