"""The OpenAPI document tells the truth: every status an API route can answer, problems as problems.

Every operation under ``/api/v1`` (core's and any added later) documents the errors every API
call can meet (400, 401, 403, 404, 422, 500, 503) as ``application/problem+json`` (RFC 9457), plus
413 where it takes a body; every write (``POST``, ``PATCH``, ``DELETE``) also documents its
optional ``Idempotency-Key`` header and the 409 a reused key answers. A route documents anything
more particular (another 409, another success media type) itself with :func:`problem`; what it
documents is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema
from litestar.routes import HTTPRoute

from portal.web.errors import PROBLEM_JSON

API_PREFIX = "/api/v1"


class FieldError(msgspec.Struct, kw_only=True):
    """One field a request got wrong."""

    message: str
    key: str | None = None
    source: str | None = None


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    code: str | None = None
    """A machine-readable reason where the portal gives one (``idempotency_key_reused``, a ledger refusal)."""


EVERY_CALL: dict[int, str] = {
    400: "The request is malformed: a parameter or field is missing, of the wrong type or refused by the input "
    "policy (control characters, invalid UTF-8, JSON nested too deep, numbers out of range). `errors` names "
    "the fields.",
    401: "No API key, or a key that is not valid or was revoked.",
    403: "The key lacks the scope this call needs, or belongs to another merchant than the host's.",
    404: "No such object for this key (another tenant's ids answer the same), or no such merchant.",
    422: "The request is well formed but cannot be done as asked (for example an unknown event type).",
    500: "An unexpected error; nothing was changed.",
    503: "The database cannot be reached right now; try again after the seconds in `Retry-After`.",
}
WITH_BODY: dict[int, str] = {413: "The request body is larger than the limit."}
WRITES = frozenset({"POST", "PATCH", "DELETE"})
FOR_WRITES: dict[int, str] = {
    409: "The `Idempotency-Key` was used with another request (`idempotency_key_reused`), or a request with it "
    "is still running (`idempotency_key_in_use`); or the object's state refuses the change (`code` says which).",
}
IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in=ParamType.HEADER,
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$"),
    description="Run this write at most once: the same key with the same request answers the first answer again "
    "(`Idempotent-Replayed: true`); kept 24 hours per API key.",
)


@dataclass
class WriteOperation(Operation):
    """An API write's operation: whatever Litestar documents, plus the ``Idempotency-Key`` header."""

    def __post_init__(self) -> None:
        parameters = list(self.parameters or [])
        if not any(isinstance(p, Parameter) and p.name == IDEMPOTENCY_KEY.name for p in parameters):
            parameters.append(IDEMPOTENCY_KEY)
        self.parameters = parameters


def problem(status_code: int, description: str | None = None) -> ResponseSpec:
    """A documented problem answer for ``status_code``."""
    return ResponseSpec(
        data_container=Problem,
        media_type=PROBLEM_JSON,
        description=description or HTTPStatus(status_code).phrase,
    )


def _takes_body(handler: HTTPRouteHandler) -> bool:
    return "data" in handler.parsed_fn_signature.parameters


def problems_for(handler: HTTPRouteHandler) -> dict[int, ResponseSpec]:
    """The problem answers ``handler`` documents: its own first, then the ones every call can meet."""
    statuses = dict(EVERY_CALL)
    if _takes_body(handler):
        statuses.update(WITH_BODY)
    if handler.http_methods & WRITES:
        statuses.update(FOR_WRITES)
    own: dict[int, Any] = dict(handler.responses or {})
    return {**{code: problem(code, text) for code, text in statuses.items() if code not in own}, **own}


def document_problems(app: Litestar) -> None:
    """Give every API operation of ``app`` its problem answers (before the document is first built)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(API_PREFIX):
            continue
        for handler in route.route_handlers:
            if handler.include_in_schema and "OPTIONS" not in handler.http_methods:
                handler.responses = problems_for(handler)
                if handler.http_methods & WRITES and handler.operation_class is Operation:
                    handler.operation_class = WriteOperation
