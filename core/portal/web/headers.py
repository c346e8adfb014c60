"""Security headers on every response: CSP with the request's nonce, no referrer, nosniff."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from portal.web.state import NONCE_KEY


def content_security_policy(nonce: str) -> str:
    """A strict, nonce-based policy: no inline code without the nonce, no framing."""
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
            "frame-ancestors 'none'",
        ]
    )


async def add_security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook adding the security headers to each response start."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers.setdefault("referrer-policy", "no-referrer")
    headers.setdefault("x-content-type-options", "nosniff")
    nonce = scope.get(NONCE_KEY)
    if nonce and "content-security-policy" not in headers:
        headers["content-security-policy"] = content_security_policy(str(nonce))
