"""Security headers on every response: CSP with the request's nonce, no referrer, nosniff."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from portal.tenancy.models import Tenant
from portal.web.state import NONCE_KEY, REQUEST_ID_KEY, SESSION_KEY, TENANT_KEY


def content_security_policy(nonce: str, frame_ancestors: tuple[str, ...] = ()) -> str:
    """A strict, nonce-based policy: no inline code without the nonce; framing only if allowed."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' https: data:",
            "font-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
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
    tenant = scope.get(TENANT_KEY)
    ancestors = tenant.merchant.frame_ancestors if isinstance(tenant, Tenant) else ()
    nonce = scope.get(NONCE_KEY)
    if nonce and "content-security-policy" not in headers:
        headers["content-security-policy"] = content_security_policy(str(nonce), ancestors)
    if not ancestors:
        headers.setdefault("x-frame-options", "DENY")
    if scope.get("scheme") == "https":
        max_age = scope["app"].state.platform.settings.hsts_max_age
        if max_age:
            headers.setdefault("strict-transport-security", f"max-age={max_age}; includeSubDomains")
    if scope.get(SESSION_KEY) is not None or scope.get("path", "").startswith("/access/"):
        headers["cache-control"] = "no-store"
