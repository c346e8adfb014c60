"""Who did something, for the audit trail: the customer behind a portal request."""

from __future__ import annotations

from typing import Any

from litestar import Request

from portal.events.bus import Actor
from portal.web.state import request_id_of


def customer_actor(request: Request[Any, Any, Any], customer_id: str) -> Actor:
    """The customer behind a portal request: their id, address, user agent and the request id."""
    return Actor(
        type="customer",
        id=customer_id,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent", "")[:500] or None,
        request_id=request_id_of(request),
    )
