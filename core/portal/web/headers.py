"""Security headers on every response: CSP with the request's nonce, no referrer, nosniff."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

from portal.tenancy.models import Tenant
from portal.web.state import NONCE_KEY, REQUEST_ID_KEY, SESSION_KEY, TENANT_KEY

EXTRA_ORIGINS_KEY = "portal_csp_origins"
FORM_TARGETS_KEY = "portal_csp_form_targets"
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer", "ambient-light-sensor", "autoplay", "battery", "bluetooth", "camera", "display-capture",
        "geolocation", "gyroscope", "hid", "idle-detection", "magnetometer", "microphone", "midi", "serial",
        "usb", "xr-spatial-tracking", "browsing-topics", "interest-cohort",
    )
)  # fmt: skip
"""Browser features the portal never uses, turned off for its pages and anything they embed.

``payment`` stays allowed for the page itself (``self``) and is not listed: hosted card fields
may use the Payment Request API.
"""


def allow_origins(connection: ASGIConnection[Any, Any, Any, Any], origins: tuple[str, ...]) -> None:
    """Let this one response load scripts and frames from, and send requests to, ``origins``.

    For pages that embed a payment gateway's hosted fields; every other page keeps ``'self'``.
    """
    if origins:
        current: tuple[str, ...] = connection.scope.get(EXTRA_ORIGINS_KEY, ())  # type: ignore[assignment]
        connection.scope[EXTRA_ORIGINS_KEY] = tuple(dict.fromkeys((*current, *origins)))  # type: ignore[literal-required]


def allow_form_targets(connection: ASGIConnection[Any, Any, Any, Any], origins: tuple[str, ...]) -> None:
    """Let this one response's forms lead to ``origins`` (a form whose answer redirects there).

    For the merchant switch page, whose forms end on a sibling merchant's host; every other page
    keeps ``form-action 'self'``.
    """
    if origins:
        current: tuple[str, ...] = connection.scope.get(FORM_TARGETS_KEY, ())  # type: ignore[assignment]
        connection.scope[FORM_TARGETS_KEY] = tuple(dict.fromkeys((*current, *origins)))  # type: ignore[literal-required]


def content_security_policy(
    nonce: str,
    frame_ancestors: tuple[str, ...] = (),
    extra_origins: tuple[str, ...] = (),
    *,
    style_src: str | None = None,
    form_targets: tuple[str, ...] = (),
) -> str:
    """A strict, nonce-based policy: no inline code without the nonce; framing only if allowed.

    ``style_src`` replaces the nonce-based style sources (the mail preview needs inline styles);
    ``form_targets`` are origins besides ``'self'`` that forms may lead to.
    """
    extra = "".join(f" {origin}" for origin in extra_origins)
    targets = "".join(f" {origin}" for origin in form_targets)
    styles = style_src or f"'self' 'nonce-{nonce}'"
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'{extra}",
            f"style-src {styles}",
            "img-src 'self' https: data:",
            "font-src 'self'",
            f"connect-src 'self'{extra}",
            f"frame-src 'self'{extra}",
            f"form-action 'self'{targets}",
            "base-uri 'none'",
            "object-src 'none'",
            "frame-ancestors " + (" ".join(frame_ancestors) if frame_ancestors else "'none'"),
        ]
    )


async def add_security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook adding the security headers to each response start."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers.setdefault("referrer-policy", "no-referrer")
    request_id = scope.get(REQUEST_ID_KEY)
    if request_id:
        headers.setdefault("x-request-id", str(request_id))
    headers.setdefault("x-content-type-options", "nosniff")
    headers.setdefault("permissions-policy", PERMISSIONS_POLICY)
    tenant = scope.get(TENANT_KEY)
    ancestors = tenant.merchant.frame_ancestors if isinstance(tenant, Tenant) else ()
    nonce = scope.get(NONCE_KEY)
    if nonce and "content-security-policy" not in headers:
        extra: tuple[str, ...] = scope.get(EXTRA_ORIGINS_KEY, ())  # type: ignore[assignment]
        targets: tuple[str, ...] = scope.get(FORM_TARGETS_KEY, ())  # type: ignore[assignment]
        headers["content-security-policy"] = content_security_policy(str(nonce), ancestors, extra, form_targets=targets)
    if not ancestors:
        headers.setdefault("x-frame-options", "DENY")
    if scope.get("scheme") == "https":
        max_age = scope["app"].state.platform.settings.hsts_max_age
        if max_age:
            headers.setdefault("strict-transport-security", f"max-age={max_age}; includeSubDomains")
    path = scope.get("path", "")
    if scope.get(SESSION_KEY) is not None or path.startswith(("/access/", "/api/")):
        # signed-in pages, links, and every API answer (some carry a secret or a link)
        headers["cache-control"] = "no-store"


ALLOW_KEY = "allowed_methods"
"""App state: each route's path template and the methods it serves, for ``Allow`` headers."""


def allowed_methods(app: Litestar) -> dict[str, str]:
    """``Allow`` header values by path template, from the routes ``app`` really serves."""
    methods: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            methods.setdefault(route.path_format, set()).update(str(method) for method in route.methods)
    return {path: ", ".join(sorted(found)) for path, found in methods.items()}


async def correct_allow_header(message: Message, scope: Scope) -> None:
    """``before_send`` hook: an ``Allow`` header lists every method served at the path.

    Litestar's automatic ``OPTIONS`` answer lists only the methods of the first handlers
    registered at a path when a controller adds more later; the app's own routes are the truth.
    """
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    if "allow" not in headers:
        return
    allow = scope["app"].state.get(ALLOW_KEY, {}).get(scope.get("path_template", ""))
    if allow:
        headers["allow"] = allow
