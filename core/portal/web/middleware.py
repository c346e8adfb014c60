"""Per-request tenancy: resolve the merchant from Host, load the session, mint the CSP nonce.

An unknown or suspended host answers 404, never a default tenant. Paths under ``/static/``,
``/-/health``, ``/-/ready`` and ``/-/metrics`` are served on any host; ``api.<base domain>``
serves only ``/api/``. Once the tenant is known, log records of the request name its merchant.
Production URLs are HTTPS: a plain-HTTP request for a host other than ``localhost`` (or a
``*.localhost`` name, which browsers treat as secure) is redirected.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any

from litestar.exceptions import NotFoundException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from portal.access.csrf import CSRF_COOKIE, new_seed
from portal.i18n import N_, choose_locale
from portal.i18n.current import use_translations
from portal.logs import set_merchant
from portal.web.sessions import COOKIE_NAME, load_session
from portal.web.state import (
    CSRF_NEW_KEY,
    CSRF_SEED_KEY,
    CUSTOMER_KEY,
    LANGUAGE_COOKIE,
    LOCALE_KEY,
    NONCE_KEY,
    SESSION_KEY,
    TENANT_KEY,
)

TENANT_FREE_PREFIXES = ("/static/", "/-/health", "/-/ready", "/-/metrics", "/-/mail")


def host_of(scope: Scope) -> str:
    """The Host header of a request (empty when missing)."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1")).strip().lower()
    return ""


def header_of(scope: Scope, name: bytes) -> str | None:
    """The first value of request header ``name`` (lower case), if sent and readable."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")[:500]
    return None


def cookies_of(scope: Scope) -> dict[str, str]:
    """The request's cookies (the first value of each name)."""
    found: dict[str, str] = {}
    for header, value in scope.get("headers", ()):
        if header == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                continue
            for name, morsel in jar.items():
                found.setdefault(name, morsel.value)
    return found


def cookie_of(scope: Scope, name: str) -> str | None:
    """One cookie's value from the request headers."""
    return cookies_of(scope).get(name)


def is_local_host(host: str) -> bool:
    """``localhost`` and ``*.localhost``, which browsers treat as secure even over HTTP."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name == "localhost" or name.endswith(".localhost") or name in ("127.0.0.1", "[::1]")


async def _redirect_to_https(scope: Scope, send: Send, host: str) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    location = f"https://{host}{scope.get('path', '/')}" + (f"?{query}" if query else "")
    status = 308 if scope.get("method") in ("GET", "HEAD") else 403
    headers: list[tuple[bytes, bytes]] = [(b"location", location.encode("latin-1"))] if status == 308 else []
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
    await send(start)
    await send(body)


class TenantMiddleware(ASGIMiddleware):
    """Attach the tenant, the session, the CSRF seed and a CSP nonce to every HTTP request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Resolve the tenant (404 when there is none), then pass the request on."""
        state: dict[str, Any] = scope  # type: ignore[assignment]
        state[NONCE_KEY] = secrets.token_urlsafe(18)
        path = scope.get("path", "")
        if path.startswith(TENANT_FREE_PREFIXES):
            await next_app(scope, receive, send)
            return
        platform = scope["app"].state.platform
        settings = platform.settings
        host = host_of(scope)
        if scope.get("scheme") == "http" and settings.public_scheme == "https" and not is_local_host(host):
            await _redirect_to_https(scope, send, host)
            return
        if host.rsplit(":", 1)[0] == f"api.{settings.base_domain.rsplit(':', 1)[0]}":
            if not path.startswith("/api/"):
                raise NotFoundException()
            await next_app(scope, receive, send)
            return
        tenant = await platform.tenants.resolve(host)
        if tenant is None:
            raise NotFoundException(detail=N_("There is no portal at this address."))
        state[TENANT_KEY] = tenant
        set_merchant(tenant.merchant.slug)
        cookies = cookies_of(scope)
        token = cookies.get(COOKIE_NAME)
        session = None
        if token:
            session = await load_session(tenant, token, timedelta(seconds=settings.session_idle_timeout))
        if session is not None:
            state[SESSION_KEY] = session
            state[CUSTOMER_KEY] = session.customer
            state[CSRF_SEED_KEY] = token
        elif CSRF_COOKIE in cookies:
            state[CSRF_SEED_KEY] = cookies[CSRF_COOKIE]
        else:
            state[CSRF_SEED_KEY] = new_seed()
            state[CSRF_NEW_KEY] = True
        locale, language = choose_locale(
            (session.locale if session is not None else None) or cookies.get(LANGUAGE_COOKIE),
            header_of(scope, b"accept-language"),
            tenant.merchant.locale,
        )
        state[LOCALE_KEY] = locale
        theme = tenant.merchant.theme_key if tenant.merchant.theme_key in platform.themes.themes else "base"
        with use_translations(platform.catalogs.translations(theme, language), locale, language):
            await next_app(scope, receive, send)
