"""A small feature plugin exercising routes, nav, widgets, settings and templates."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from portal.activity.formats import ActivityFormat
from portal.api.auth import api_merchant
from portal.api.keys import ApiPrincipal
from portal.api.params import MerchantParam
from portal.db.engine import fetch, tenant_transaction
from portal.plugin import (
    ActivityDescription,
    ActivityEvent,
    ActivityLine,
    ApiRouteSet,
    ApiScope,
    CliCommand,
    EventHandler,
    EventType,
    HandledEvent,
    LinkFlow,
    LinkPurpose,
    NavItem,
    PaymentGateway,
    PiccoloApp,
    PluginInfo,
    RouteSet,
    ScheduledJob,
    Widget,
    hookimpl,
)
from portal.tenancy.context import PageContext
from portal.web.render import render_page
from portal.web.state import customer_of, tenant_of

HERE = Path(__file__).resolve().parent


class ExampleSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    greeting: str = "Hello"
    max_items: int = 3
    broken_widget: bool = False


@get("/example", name="example_page")
async def example_page(request: Request[Any, Any, Any]) -> Response[str]:
    tenant = tenant_of(request)
    customer = customer_of(request)
    settings: ExampleSettings = tenant.plugin_settings["example"]
    return render_page(
        request,
        "example/page.html",
        tenant=tenant,
        title="Example",
        active_nav="example",
        greeting=settings.greeting,
        name=customer.name,
    )


@get("/example/fail/{label:str}", name="example_fail")
async def example_fail(label: FromPath[str]) -> Response[str]:
    """Fails unexpectedly: how the error log shows a request it could not serve."""
    raise RuntimeError(f"example failure for {label}")


async def load_widget(context: PageContext) -> dict[str, Any]:
    settings: ExampleSettings = context.plugin_settings("example")
    rows = await fetch(
        "SELECT name FROM portal_customer WHERE id = $1", context.customer.id if context.customer else ""
    )
    return {"greeting": settings.greeting, "customer_name": rows[0]["name"] if rows else ""}


async def load_broken_widget(context: PageContext) -> dict[str, Any]:
    await fetch("SELECT 1 / 0")  # fails inside the page's transaction
    return {}


@hookimpl
def portal_plugin_info() -> PluginInfo:
    return PluginInfo(
        key="example",
        title="Example",
        description="Test plugin.",
        settings=ExampleSettings,
        templates=HERE / "templates",
    )


@hookimpl
def portal_routes() -> RouteSet:
    return RouteSet(handlers=[example_page, example_fail])


@hookimpl
def portal_nav_items(context: PageContext) -> list[NavItem]:
    return [NavItem(label="Example", href="/example", order=50, key="example")]


@hookimpl
def portal_header_partials(context: PageContext) -> list[str]:
    return ["example/header.html"]


@hookimpl
def portal_overview_widgets(context: PageContext) -> list[Widget]:
    widgets = [Widget(key="example", title="Example widget", template="example/widget.html", load=load_widget)]
    if context.plugin_settings("example").broken_widget:
        widgets.insert(
            0,
            Widget(
                key="broken", title="Broken widget", template="example/widget.html", load=load_broken_widget, order=1
            ),
        )
    return widgets


@hookimpl
def portal_template_vars(context: PageContext, template: str) -> dict[str, Any]:
    return {"example_marker": f"example-vars-for-{template}"}


class NoteWritten(msgspec.Struct, frozen=True):
    note_id: str
    customer_id: str


class EchoGateway:
    """Not a payment gateway: only proves the hook's registration path."""

    key = "echo"

    def __init__(self, settings: Any, merchant: Any) -> None:
        self.settings = settings
        self.merchant = merchant


@click.command("example-hello")
@click.argument("name")
def hello(name: str) -> None:
    """Say hello (a plugin-provided command)."""
    click.echo(f"Hello from the example plugin, {name}!")


@hookimpl
def portal_piccolo_apps() -> PiccoloApp:
    return PiccoloApp(module="support.example_plugin.piccolo_app")


@hookimpl
def portal_event_types() -> list[EventType]:
    return [EventType(name="example.note_written", payload=NoteWritten, description="A note was written.")]


def describe_note(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine:
    return ActivityLine(text=f"Note {event.data.get('note_id', '')} written")


@hookimpl
def portal_activity_descriptions() -> list[ActivityDescription]:
    return [ActivityDescription(event_type="example.note_written", describe=describe_note)]


class ExampleNoteOut(msgspec.Struct, kw_only=True):
    id: str
    customer: str
    body: str


class ExampleNoteList(msgspec.Struct, kw_only=True):
    data: list[ExampleNoteOut]
    object: str = "list"


@get("/example-notes", summary="List the merchant's example notes")
async def list_example_notes(
    request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], merchant: MerchantParam = None
) -> ExampleNoteList:
    """Notes of the merchant's customers, newest first (scope ``example:read``)."""
    tenant = await api_merchant(request, principal, merchant, scope="example:read")
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT n.id, n.customer_id, n.body FROM example_note n JOIN portal_customer c ON c.id = n.customer_id "
            "WHERE c.merchant_id = $1 ORDER BY n.id DESC LIMIT 100",
            tenant.merchant.id,
        )
    return ExampleNoteList(data=[ExampleNoteOut(id=r["id"], customer=r["customer_id"], body=r["body"]) for r in rows])


@hookimpl
def portal_api_routes() -> ApiRouteSet:
    return ApiRouteSet(
        handlers=[list_example_notes], scopes=[ApiScope(name="example:read", description="Read example notes.")]
    )


TICKS: list[float] = []
"""When the example job ran in this process (monotonic seconds)."""


async def tick(platform: Any) -> None:
    TICKS.append(time.monotonic())


@hookimpl
def portal_scheduled_jobs() -> list[ScheduledJob]:
    return [ScheduledJob(name="example.tick", every=timedelta(seconds=1), run=tick)]


@hookimpl
def portal_task_modules() -> list[str]:
    return ["support.example_plugin.tasks"]


@hookimpl
def portal_cli_commands() -> list[CliCommand]:
    return [CliCommand(command=hello)]


@hookimpl
def portal_payment_gateways() -> list[PaymentGateway]:
    return [PaymentGateway(key="echo", title="Echo", factory=EchoGateway)]


@hookimpl
def portal_link_flows() -> list[LinkFlow]:
    return [LinkFlow(name="example_notes", path="/example", title="Write a note")]


@hookimpl
def portal_link_purposes() -> list[LinkPurpose]:
    return [
        LinkPurpose(
            name="example_reminder",
            default_ttl=timedelta(days=2),
            max_ttl=timedelta(days=3),
            single_use=False,
            default_flow="example_notes",
        )
    ]


async def note_customer_change(event: HandledEvent) -> None:
    """Write a note for every changed customer (idempotent: one note per event)."""
    await fetch(
        "INSERT INTO example_note (id, iso_id, customer_id, body) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        "note_" + event.id,
        event.iso_id,
        event.customer_id,
        f"{event.type} #{event.seq}: {event.data.get('name', '')}",
    )


async def always_fail(event: HandledEvent) -> None:
    await fetch(
        "INSERT INTO example_note (id, iso_id, customer_id, body) VALUES ('x', $1, $2, 'never')",
        event.iso_id,
        event.customer_id,
    )
    raise RuntimeError("this handler always fails")


@hookimpl
def portal_event_handlers() -> list[EventHandler]:
    return [
        EventHandler(name="note_changes", event_types=frozenset({"customer.updated"}), handle=note_customer_change),
        EventHandler(name="always_fails", event_types=frozenset({"customer.updated"}), handle=always_fail),
    ]
