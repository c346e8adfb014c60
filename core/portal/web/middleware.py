"""Per-request tenancy: resolve the merchant from Host, load the session, mint the CSP nonce.

An unknown or suspended host answers 404, never a default tenant. Paths under ``/static/``
and ``/-/health`` are served on any host.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from http.cookies import SimpleCookie

from litestar.exceptions import NotFoundException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from portal.web.sessions import COOKIE_NAME, load_session
from portal.web.state import CUSTOMER_KEY, NONCE_KEY, TENANT_KEY

TENANT_FREE_PREFIXES = ("/static/", "/-/health")


def host_of(scope: Scope) -> str:
    """The Host header of a request (empty when missing)."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return value.decode("latin-1")
    return ""


def cookie_of(scope: Scope, name: str) -> str | None:
    """One cookie's value from the request headers."""
    for header, value in scope.get("headers", ()):
        if header == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                return None
            if name in jar:
                return jar[name].value
    return None


class TenantMiddleware(ASGIMiddleware):
    """Attach the tenant, the signed-in customer and a CSP nonce to every HTTP request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Resolve the tenant (404 when there is none), then pass the request on."""
        scope[NONCE_KEY] = secrets.token_urlsafe(18)  # type: ignore[literal-required]
        path = scope.get("path", "")
        if path.startswith(TENANT_FREE_PREFIXES):
            await next_app(scope, receive, send)
            return
        platform = scope["app"].state.platform
        tenant = await platform.tenants.resolve(host_of(scope))
        if tenant is None:
            raise NotFoundException(detail="There is no portal at this address.")
        scope[TENANT_KEY] = tenant  # type: ignore[literal-required]
        token = cookie_of(scope, COOKIE_NAME)
        if token:
            idle = timedelta(seconds=platform.settings.session_idle_timeout)
            scope[CUSTOMER_KEY] = await load_session(tenant, token, idle)  # type: ignore[literal-required]
        await next_app(scope, receive, send)
