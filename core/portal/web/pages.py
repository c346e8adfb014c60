"""Core routes: the Overview page, health and readiness, sign-out, the demo sign-in and the catch-all 404."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get, route
from litestar.enums import HttpMethod
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from portal.activity.feed import recent_activity
from portal.activity.formats import formats_for
from portal.db.engine import savepoint, tenant_transaction
from portal.i18n import current_locale, gettext
from portal.plugin import Widget
from portal.tenancy.context import PageContext
from portal.web.render import render_page
from portal.web.state import optional_customer, platform_of, tenant_of

log = logging.getLogger(__name__)


class RenderedWidget:
    """A widget with the data its ``load`` returned, ready for the template."""

    __slots__ = ("data", "failed", "key", "template", "title")

    def __init__(self, widget: Widget, data: dict[str, Any], failed: bool = False) -> None:
        self.key = widget.key
        self.title = widget.title
        self.template = widget.template
        self.data = data
        self.failed = failed


Loader = Callable[[], Awaitable[Any]]


async def _load_each(loaders: list[tuple[str, Loader]], slug: str) -> list[tuple[Any, bool]]:
    """Each loader in a savepoint of its own: a failing one undoes only its own work and is marked failed."""
    results: list[tuple[Any, bool]] = []
    for name, load in loaders:
        try:
            async with savepoint():
                results.append((await load(), False))
        except Exception:
            log.exception("%s failed for merchant %s", name, slug)
            results.append((None, True))
    return results


async def load_page(iso_id: str, loaders: list[tuple[str, Loader]], slug: str) -> list[tuple[Any, bool]]:
    """Run the loaders in one tenant transaction; each result with whether its loader failed.

    Together first, with no savepoint (two round trips fewer per widget); when one fails, that
    transaction is rolled back and a second one runs each loader in a savepoint of its own, so
    only the failing ones are marked failed (a loader may thus run twice: loaders only read).
    """
    try:
        async with tenant_transaction(iso_id):
            return [(await load(), False) for _, load in loaders]
    except Exception:
        log.info("a loader of the page failed for merchant %s; loading each apart", slug)
    async with tenant_transaction(iso_id):
        return await _load_each(loaders, slug)


@get("/", name="overview", include_in_schema=False)
async def overview(request: Request[Any, Any, Any]) -> Response[str] | Redirect:
    """The Overview page: the enabled plugins' widgets and the customer's *Recent activity*."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    platform = platform_of(request)
    context = PageContext(request, tenant, customer)
    merchant = tenant.merchant
    fmt = formats_for(merchant.timezone, current_locale())
    widgets = platform.registry.widgets(context, tenant.enabled_plugins)
    described = platform.registry.activity_descriptions(tenant.enabled_plugins)

    def widget_loader(widget: Widget) -> Loader:
        async def load() -> Any:
            return await widget.load(context) if widget.load else {}

        return load

    async def feed() -> Any:
        return await recent_activity(tenant, customer.id, described, fmt)

    loaders = [(f"widget {widget.key}", widget_loader(widget)) for widget in widgets]
    loaders.append(("recent activity", feed))
    results = await load_page(merchant.iso_id, loaders, merchant.slug)
    rendered = [
        RenderedWidget(widget, data or {}, failed=failed)
        for widget, (data, failed) in zip(widgets, results, strict=False)
    ]
    return render_page(
        request,
        "overview.html",
        tenant=tenant,
        title=gettext("Overview"),
        active_nav="overview",
        widgets=rendered,
        activity=results[-1][0],
    )


@get("/-/health", name="health", include_in_schema=False)
async def health() -> dict[str, str]:
    """Liveness: the process serves requests. It asks nothing of the database (see ``/-/ready``)."""
    return {"status": "ok"}


@get("/-/ready", name="ready", include_in_schema=False)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Readiness: the database answers and its migrations are current; else 503 naming what is wrong."""
    platform = platform_of(request)
    problems = await platform.readiness()
    if not problems:
        return Response({"status": "ready"}, headers={"Cache-Control": "no-store"})
    return Response(
        {"status": "unavailable", "problems": problems},
        status_code=503,
        headers={"Retry-After": str(platform.settings.unavailable_retry_after), "Cache-Control": "no-store"},
    )


@route(
    "/{path:path}",
    http_method=[HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE],
    name="not_found",
    include_in_schema=False,
    opt={"csrf_exempt": True},
)
async def not_found(request: Request[Any, Any, Any], path: FromPath[str]) -> None:
    """Any path nothing else serves: 404, after the tenant middleware has run."""
    raise NotFoundException()


CORE_ROUTES = [overview, health, ready, not_found]
