"""Before a signed-in customer's request: let enabled plugins load what their template vars read.

``render_page`` and ``portal_template_vars`` are synchronous, so a plugin that shows something
needing a query on every page (the merchant switch's header line) loads it here, through
``portal_before_page``, and keeps it where its template vars find it.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from portal.tenancy.context import PageContext
from portal.tenancy.models import CustomerView, Tenant
from portal.web.state import CUSTOMER_KEY, TENANT_KEY


class BeforePageMiddleware(ASGIMiddleware):
    """Run ``portal_before_page`` for a signed-in customer's pages and forms (not the API, not static files)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Await the enabled plugins' preparations, then pass the request on."""
        tenant = scope.get(TENANT_KEY)
        customer = scope.get(CUSTOMER_KEY)
        path = scope["path"]
        if (
            isinstance(tenant, Tenant)
            and isinstance(customer, CustomerView)
            and not path.startswith(("/api/", "/static/"))
        ):
            request: Request[Any, Any, Any] = Request(scope, receive, send)
            await scope["app"].state.platform.registry.before_page(
                PageContext(request, tenant, customer), tenant.enabled_plugins
            )
        await next_app(scope, receive, send)
