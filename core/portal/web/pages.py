"""Core routes: the Overview page, health, sign-out, the demo sign-in and the catch-all 404."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from litestar import Request, Response, get, post, route
from litestar.enums import HttpMethod
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from portal.db.engine import fetch, tenant_transaction
from portal.plugin import Widget
from portal.tenancy.context import PageContext
from portal.web.middleware import cookie_of
from portal.web.render import render_page
from portal.web.sessions import COOKIE_NAME, end_session, start_session
from portal.web.state import customer_of, platform_of, tenant_of

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


@get("/", name="overview")
async def overview(request: Request[Any, Any, Any]) -> Response[str]:
    """The Overview page, assembled from the enabled plugins' widgets."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    platform = platform_of(request)
    context = PageContext(request, tenant, customer)
    rendered: list[RenderedWidget] = []
    async with tenant_transaction(tenant.merchant.iso_id) as transaction:
        for widget in platform.registry.widgets(context, tenant.enabled_plugins):
            try:
                async with transaction.connection.transaction():  # a savepoint per widget
                    data = await widget.load(context) if widget.load else {}
                rendered.append(RenderedWidget(widget, data))
            except Exception:
                log.exception("widget %s failed for merchant %s", widget.key, tenant.merchant.slug)
                rendered.append(RenderedWidget(widget, {}, failed=True))
    return render_page(
        request, "overview.html", tenant=tenant, title="Overview", active_nav="overview", widgets=rendered
    )


@get("/-/health", name="health", include_in_schema=False)
async def health(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Liveness and database reachability."""
    ok = await platform_of(request).ping()
    return {"status": "ok" if ok else "degraded"}


@post("/logout", name="logout", status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    """End the session server-side and forget the cookie."""
    tenant = tenant_of(request)
    token = cookie_of(request.scope, COOKIE_NAME)
    if token:
        await end_session(tenant, token)
    response = Redirect("/", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@get("/-/demo/sign-in/{customer_id:str}", name="demo_sign_in", include_in_schema=False)
async def demo_sign_in(request: Request[Any, Any, Any], customer_id: FromPath[str]) -> Redirect:
    """Demo mode only: sign in as a customer of this merchant."""
    platform = platform_of(request)
    if not platform.settings.demo:
        raise NotFoundException()
    tenant = tenant_of(request)
    async with tenant_transaction(tenant.merchant.iso_id):
        found = await fetch(
            "SELECT id FROM portal_customer WHERE id = $1 AND merchant_id = $2", customer_id, tenant.merchant.id
        )
    if not found:
        raise NotFoundException()
    token = await start_session(tenant, customer_id, timedelta(seconds=platform.settings.session_absolute_timeout))
    response = Redirect("/", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        token,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
        max_age=int(platform.settings.session_absolute_timeout),
    )
    return response


@route(
    "/{path:path}",
    http_method=[HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE],
    name="not_found",
    include_in_schema=False,
)
async def not_found(request: Request[Any, Any, Any], path: FromPath[str]) -> None:
    """Any path nothing else serves: 404, after the tenant middleware has run."""
    raise NotFoundException()


CORE_ROUTES = [overview, health, logout, demo_sign_in, not_found]
