"""Render a themed page: the base context (brand, nav, customer, nonce) plus the page's own."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection

from portal.access.csrf import CSRF_COOKIE, token_for
from portal.i18n import LANGUAGE_NAMES, N_, current_language, current_locale
from portal.plugin import NavItem
from portal.tenancy.context import PageContext
from portal.tenancy.models import Tenant
from portal.web.state import CSRF_NEW_KEY, CSRF_SEED_KEY, csp_nonce_of, optional_customer, platform_of, session_of

OVERVIEW_NAV = NavItem(label=N_("Overview"), href="/", order=0, key="overview")


def _path_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The page's path and query, to come back to after a form in the layout (the language switch)."""
    query = connection.scope.get("query_string", b"").decode("latin-1")
    return connection.scope["path"] + (f"?{query}" if query else "")


def render_page(
    connection: ASGIConnection[Any, Any, Any, Any],
    template: str,
    *,
    tenant: Tenant | None,
    title: str,
    active_nav: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> Response[str]:
    """Render ``template`` in the merchant's theme (``base`` when there is no merchant)."""
    platform = platform_of(connection)
    customer = optional_customer(connection)
    session = session_of(connection)
    seed = connection.scope.get(CSRF_SEED_KEY)
    context: dict[str, Any] = {
        "merchant": tenant.merchant if tenant else None,
        "customer": customer,
        "nav": [],
        "header_partials": [],
        "active_nav": active_nav,
        "csp_nonce": csp_nonce_of(connection),
        "page_title": title,
        "title": title,
        "status_code": status_code,
        "lang": current_locale().replace("_", "-"),
        "language": current_language(),
        "languages": LANGUAGE_NAMES,
        "request_path": _path_of(connection),
        "csrf_token": token_for(str(seed)) if seed else "",
        "return_url": session.return_url if session else None,
    }
    theme = "base"
    if tenant is not None:
        theme = tenant.merchant.theme_key
        if theme not in platform.themes.themes:
            theme = "base"
        if customer is not None and isinstance(connection, Request):
            hook_context = PageContext(connection, tenant, customer)
            enabled = tenant.enabled_plugins
            context["nav"] = [OVERVIEW_NAV, *platform.registry.nav_items(hook_context, enabled)]
            context["header_partials"] = platform.registry.header_partials(hook_context, enabled)
            for key, value in platform.registry.template_vars(hook_context, template, enabled).items():
                context.setdefault(key, value)
    context.update(values)
    html = platform.themes.render(theme, template, context)
    response: Response[str] = Response(html, status_code=status_code, media_type=MediaType.HTML, headers=headers)
    if seed and connection.scope.get(CSRF_NEW_KEY):
        response.set_cookie(CSRF_COOKIE, str(seed), path="/", secure=True, httponly=True, samesite="lax")
    return response
