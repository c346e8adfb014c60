"""CSRF protection for every form POST, tied to the session.

The expected token is derived from a secret cookie: the session cookie when the visitor is
signed in, otherwise an anonymous ``__Host-portal_csrf`` cookie. An attacker's page can make the
browser send the cookie but cannot read it, so it cannot produce the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from portal.i18n.current import N_

CSRF_COOKIE = "__Host-portal_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def new_seed() -> str:
    """A fresh anonymous CSRF cookie value."""
    return secrets.token_urlsafe(32)


def token_for(seed: str) -> str:
    """The CSRF token forms must carry for a cookie value."""
    digest = hashlib.sha256(b"portal-csrf\x00" + seed.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def csrf_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Refuse unsafe requests to pages without the right token (the API uses API keys instead)."""
    from portal.web.state import CSRF_SEED_KEY

    if connection.scope.get("method") not in UNSAFE_METHODS or handler.opt.get("csrf_exempt"):
        return
    seed = connection.scope.get(CSRF_SEED_KEY)
    submitted = connection.headers.get(HEADER)
    if submitted is None and isinstance(connection, Request):
        form = await connection.form()
        value = form.get(FIELD)
        submitted = value if isinstance(value, str) else None
    if not seed or not submitted or not hmac.compare_digest(token_for(str(seed)), submitted):
        raise PermissionDeniedException(detail=N_("This form has expired. Please reload the page and try again."))
