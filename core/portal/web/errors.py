"""Errors as themed pages for browsers and RFC 9457 problem documents for API clients."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from portal.access.tokens import redact_tokens
from portal.db.engine import database_unavailable
from portal.i18n import DEFAULT_LANGUAGE, N_, choose_locale, gettext
from portal.i18n.current import use_translations
from portal.tenancy.models import Tenant
from portal.web.middleware import header_of
from portal.web.render import render_page
from portal.web.state import TENANT_KEY, platform_of

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

FRIENDLY: dict[int, tuple[str, str]] = {
    400: (N_("Something is wrong with that request"), N_("Please go back and try again.")),
    401: (N_("Sign-in needed"), N_("Open the link the merchant sent you to reach your account.")),
    403: (N_("Not allowed"), N_("You cannot do that here.")),
    404: (N_("Page not found"), N_("There is nothing at this address.")),
    405: (N_("Not allowed"), N_("That action is not available here.")),
    429: (N_("Too many requests"), N_("Please wait a moment and try again.")),
    500: (N_("Something went wrong"), N_("We could not complete that. Please try again in a moment.")),
    503: (
        N_("Temporarily unavailable"),
        N_("The portal cannot be reached right now. Please try again in a moment."),
    ),
}
"""Each status's page title and sentence for people (translated when shown)."""
UNAVAILABLE_DETAIL = "The service is temporarily unavailable. Try again after the seconds in Retry-After."
REFUSED_DETAIL = N_("A value in the request cannot be stored or compared (too large, too long or not valid text).")


def wants_problem_json(request: Request[Any, Any, Any]) -> bool:
    """API paths and clients that prefer JSON get problem documents."""
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


def problem_response(status_code: int, detail: str, *, extra: dict[str, Any] | None = None) -> Response[Any]:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
    }
    if extra:
        body.update(extra)
    return Response(body, status_code=status_code, media_type=PROBLEM_JSON)


def error_page(request: Request[Any, Any, Any], status_code: int, detail: str | None = None) -> Response[Any]:
    """A themed error page, branded when the host is a merchant's, in the request's language.

    ``detail`` is translated when it is a message of a catalog (details marked with ``N_``
    where they are raised); other details are shown as given.
    """
    tenant = request.scope.get(TENANT_KEY)
    if not isinstance(tenant, Tenant):  # no merchant (an unknown host): the browser's language, else English
        locale, language = choose_locale(None, header_of(request.scope, b"accept-language"), DEFAULT_LANGUAGE)
        with use_translations(platform_of(request).catalogs.translations("base", language), locale, language):
            return _error_page(request, None, status_code, detail)
    return _error_page(request, tenant, status_code, detail)


def _error_page(
    request: Request[Any, Any, Any], tenant: Tenant | None, status_code: int, detail: str | None
) -> Response[Any]:
    title, default_detail = FRIENDLY.get(status_code, (HTTPStatus(status_code).phrase, ""))
    return render_page(
        request,
        "error.html",
        tenant=tenant,
        title=gettext(title),
        status_code=status_code,
        detail=gettext(detail or default_detail) if (detail or default_detail) else "",
    )


def error_answer(request: Request[Any, Any, Any], status_code: int, detail: str) -> Response[Any]:
    """A problem document for API clients, else a themed page (with the status's friendly text)."""
    if wants_problem_json(request):
        return problem_response(status_code, detail)
    return error_page(request, status_code, None if status_code in (500, 503) else detail)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Render an HTTP error for the kind of client that asked."""
    status_code = exc.status_code
    headers = dict(exc.headers or {})
    errors = exc.extra if isinstance(exc.extra, list) and exc.extra else None
    detail = exc.detail
    if isinstance(exc, ValidationException) and errors and detail.startswith("Validation failed for "):
        detail = naming_fields(errors) or detail
    if wants_problem_json(request):
        response = problem_response(status_code, detail, extra={"errors": errors} if errors else None)
    else:
        page_detail = detail if detail and detail != HTTPStatus(status_code).phrase else None
        response = error_page(request, status_code, page_detail)
    response.headers.update(headers)
    return response


def naming_fields(errors: list[Any]) -> str:
    """A validation failure's detail that names each field and what is wrong with it."""
    parts = []
    for error in errors:
        if isinstance(error, dict) and error.get("key"):
            message = str(error.get("message", "is not valid"))
            parts.append(f"'{error['key']}': {message}")
    return "Invalid " + "; ".join(parts) + "." if parts else ""


INPUT_REFUSALS = (
    asyncpg.CharacterNotInRepertoireError,
    asyncpg.UntranslatableCharacterError,
    asyncpg.NumericValueOutOfRangeError,
    asyncpg.StringDataRightTruncationError,
    asyncpg.InvalidTextRepresentationError,
    asyncpg.InvalidBinaryRepresentationError,
    asyncpg.InvalidDatetimeFormatError,
    asyncpg.DatetimeFieldOverflowError,
)
"""Errors PostgreSQL raises for a value it cannot hold (rather than for a fault of ours)."""
CLIENT_SIDE_REFUSALS = ("out of int64 range", "out of int32 range", "out of int16 range", "surrogates not allowed")
"""asyncpg's own refusals of a value before sending it that only input causes (a wrong type is our bug)."""


def handle_database_refusal(request: Request[Any, Any, Any], exc: asyncpg.DataError) -> Response[Any]:
    """A value the database refused (out of range, not representable): 400, never a 500.

    The input policy refuses such values before any query; this is the net under it. Other
    data errors (a division by zero in our own SQL) remain what they are: a 500.
    """
    if not isinstance(exc, INPUT_REFUSALS) and not (
        type(exc) is asyncpg.DataError and any(sign in str(exc) for sign in CLIENT_SIDE_REFUSALS)
    ):
        return handle_unexpected(request, exc)
    log.warning("database refused a value on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_answer(request, 400, REFUSED_DETAIL)


def handle_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The database is down, unreachable or out of time: 503 with ``Retry-After``, never a 500."""
    path = redact_tokens(request.url.path)
    log.warning("database unavailable on %s %s: %s: %s", request.method, path, type(exc).__name__, exc)
    response = error_answer(request, 503, UNAVAILABLE_DETAIL)
    response.headers["Retry-After"] = str(platform_of(request).settings.unavailable_retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Log an unhandled error and answer 500 without details (503 when the database is unavailable)."""
    if database_unavailable(exc):
        return handle_unavailable(request, exc)
    path = redact_tokens(request.url.path)
    log.exception("unhandled error on %s %s", request.method, path, exc_info=exc)
    return error_answer(request, 500, "An unexpected error occurred.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: handle_http_exception,
    asyncpg.DataError: handle_database_refusal,
    Exception: handle_unexpected,
}
