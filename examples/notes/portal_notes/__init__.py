"""Notes: a page where customers keep short notes, a nav item, an Overview widget, a setting and an event."""

from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.response import Redirect

from portal.sdk import (
    N_,
    EventType,
    Form,
    NavItem,
    PageContext,
    PiccoloApp,
    PluginInfo,
    RouteSet,
    Widget,
    customer_of,
    emit_as_customer,
    fetch,
    hookimpl,
    new_id,
    render_page,
    tenant_of,
    tenant_transaction,
)


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_length: int = 280


class NoteAdded(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    body: str


async def notes_of(iso_id: str, merchant_id: str, customer_id: str) -> list[dict[str, Any]]:
    async with tenant_transaction(iso_id):
        return await fetch(
            "SELECT id, body FROM notes_note WHERE merchant_id = $1 AND customer_id = $2 ORDER BY created_at DESC",
            merchant_id,
            customer_id,
        )


async def page(request: Request[Any, Any, Any], *, body: str = "", error: str = "") -> Response[str]:
    tenant, customer = tenant_of(request), customer_of(request)
    notes = await notes_of(tenant.merchant.iso_id, tenant.merchant.id, customer.id)
    return render_page(
        request, "notes/notes.html", tenant=tenant, title="Notes", active_nav="notes",
        status_code=400 if error else 200, notes=notes, body=body, error=error,
    )  # fmt: skip


@get("/notes", name="notes_page")
async def notes_page(request: Request[Any, Any, Any]) -> Response[str]:
    return await page(request)


@post("/notes", name="notes_add", status_code=303)
async def add_note(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    tenant, customer = tenant_of(request), customer_of(request)
    body, limit = data.get("body", "").strip(), tenant.plugin_settings["notes"].max_length
    if not body or len(body) > limit:
        return await page(request, body=body, error=f"Write a note of 1 to {limit} characters.")
    note_id = new_id("note")
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch(
            "INSERT INTO notes_note (id, iso_id, merchant_id, customer_id, body) VALUES ($1, $2, $3, $4, $5)",
            note_id, tenant.merchant.iso_id, tenant.merchant.id, customer.id, body,
        )  # fmt: skip
        await emit_as_customer(request, "notes.note_added", NoteAdded(id=note_id, body=body), target=("note", note_id))
    return Redirect("/notes", status_code=303)


async def load_widget(context: PageContext) -> dict[str, Any]:
    assert context.customer is not None
    return {"notes": (await notes_of(context.iso_id, context.merchant.id, context.customer.id))[:3]}


@hookimpl
def portal_plugin_info() -> PluginInfo:
    return PluginInfo(key="notes", title="Notes", settings=Settings, templates=Path(__file__).parent / "templates")


@hookimpl
def portal_routes() -> RouteSet:
    return RouteSet(handlers=[notes_page, add_note])


@hookimpl
def portal_nav_items(context: PageContext) -> list[NavItem]:
    return [NavItem(label=N_("Notes"), href="/notes", order=60, key="notes")]


@hookimpl
def portal_overview_widgets(context: PageContext) -> list[Widget]:
    return [Widget(key="notes", title=N_("Latest notes"), template="notes/widget.html", load=load_widget)]


@hookimpl
def portal_event_types() -> list[EventType]:
    return [EventType(name="notes.note_added", payload=NoteAdded, description="A customer wrote a note.")]


@hookimpl
def portal_piccolo_apps() -> PiccoloApp:
    return PiccoloApp(module="portal_notes.piccolo_app")
