"""Request ids: every request gets one before anything else runs, and every answer names it.

The id is the client's (or proxy's) ``X-Request-ID`` when that is 1 to 64 characters of
``[A-Za-z0-9._-]``, else a fresh ``req_`` id. It is kept in the scope (``request_id_of``), in
the log context (each record made while serving the request carries it), and echoed as
``X-Request-ID`` by :func:`portal.web.headers.add_security_headers`.
"""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from portal.ids import new_id
from portal.logs import request_context
from portal.web.state import REQUEST_ID_KEY

HEADER = b"x-request-id"
_ACCEPTED = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(scope: Scope) -> str:
    """The request's own ``X-Request-ID`` when it is well-formed, else a new id."""
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            candidate = value.decode("latin-1")
            if _ACCEPTED.fullmatch(candidate):
                return candidate
            break
    return new_id("req")


class RequestIds:
    """ASGI wrapper around the whole app: routing failures (404, 405) get an id too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Give the request its id, then serve it inside that id's log context."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        identifier = request_id(scope)
        scope[REQUEST_ID_KEY] = identifier  # type: ignore[literal-required]
        with request_context(identifier):
            await self.app(scope, receive, send)


def install_request_ids(app: Litestar) -> None:
    """Wrap ``app``'s request handling (inside its ``before_send`` hooks, outside its routing)."""
    app.asgi_handler = RequestIds(app.asgi_handler)
