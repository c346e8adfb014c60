"""Core routes: the Overview page, health and readiness, sign-out, the demo sign-in and the catch-all 404."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get, route
from litestar.enums import HttpMethod
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from portal.activity.feed import recent_activity
from portal.activity.formats import formats_for
from portal.db.engine import savepoint, tenant_transaction
from portal.plugin import Widget
from portal.tenancy.context import PageContext
from portal.web.render import render_page
from portal.web.state import optional_customer, platform_of, session_of, tenant_of

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


@get("/", name="overview", include_in_schema=False)
async def overview(request: Request[Any, Any, Any]) -> Response[str] | Redirect:
    """The Overview page, assembled from the enabled plugins' widgets."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    platform = platform_of(request)
    context = PageContext(request, tenant, customer)
    rendered: list[RenderedWidget] = []
    session = session_of(request)
    merchant = tenant.merchant
    fmt = formats_for(merchant.timezone, session.locale if session else None, merchant.locale)
    activity = None
    async with tenant_transaction(tenant.merchant.iso_id):
        for widget in platform.registry.widgets(context, tenant.enabled_plugins):
            try:
                async with savepoint():  # one per widget: a failing widget undoes only its own work
                    data = await widget.load(context) if widget.load else {}
                rendered.append(RenderedWidget(widget, data))
            except Exception:
                log.exception("widget %s failed for merchant %s", widget.key, tenant.merchant.slug)
                rendered.append(RenderedWidget(widget, {}, failed=True))
        try:
            async with savepoint():
                described = platform.registry.activity_descriptions(tenant.enabled_plugins)
                activity = await recent_activity(tenant, customer.id, described, fmt)
        except Exception:
            log.exception("recent activity failed for merchant %s", merchant.slug)
    return render_page(
        request,
        "overview.html",
        tenant=tenant,
        title="Overview",
        active_nav="overview",
        widgets=rendered,
        activity=activity,
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
