"""Shared by the billing API's controllers: errors as problems, tenants of ids, views and pages."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import msgspec
from litestar import Controller, Request, Response
from litestar.exceptions import NotFoundException, ValidationException

from portal.api.auth import merchant_scope, merchant_tenant
from portal.api.idempotency import mark_not_run
from portal.api.keys import ApiPrincipal
from portal.api.openapi import problem
from portal.api.params import parse_time
from portal.billing.errors import BillingError, NotFoundError
from portal.db.engine import fetch, tenant_transaction
from portal.payments.methods import PaymentMethodNotFoundError
from portal.tenancy.models import Tenant
from portal.web.errors import handle_http_exception, naming_fields, problem_response
from portal.web.state import platform_of

T = TypeVar("T")

CONFLICT_CODES = frozenset(
    {
        "invalid_transition",
        "no_change",
        "invoice_not_payable",
        "nothing_due",
        "payment_in_progress",
        "inactive_product",
        "inactive_price",
    }
)
"""Codes of changes the object's present state refuses (409); other refusals are 422."""
UNAVAILABLE_CODES = frozenset({"gateway_unavailable"})
"""Codes of a payment gateway that did not answer (503: try again, with the same Idempotency-Key)."""

TABLES = {
    "product": "portal_billing_product",
    "price": "portal_billing_price",
    "subscription": "portal_billing_subscription",
    "invoice": "portal_billing_invoice",
}

HORIZON = timedelta(days=3653)
"""How far from now a time in a request may be."""

CONFLICT_RESPONSE = {409: problem(409, "The object's present state does not allow this change (`code` says why).")}
UNPROCESSABLE = "The request is well formed but the ledger refuses it (`code` says why), or a field is invalid."


def status_of(error: BillingError) -> int:
    """The HTTP status a ledger refusal answers."""
    if isinstance(error, NotFoundError):
        return 404
    if error.code in CONFLICT_CODES:
        return 409
    if error.code in UNAVAILABLE_CODES:
        return 503
    return 422


def handle_billing_error(request: Request[Any, Any, Any], exc: BillingError) -> Response[Any]:
    """A ledger refusal as a problem document carrying the refusal's ``code``."""
    status = status_of(exc)
    if isinstance(exc, NotFoundError):
        detail = f"No such {exc.kind.replace('_', ' ')}."
    else:
        detail = exc.message[:1].upper() + exc.message[1:]
        detail = detail if detail.endswith(".") else detail + "."
    response = problem_response(status, detail, extra={"code": exc.code})
    if status == 503:
        response.headers["Retry-After"] = str(platform_of(request).settings.unavailable_retry_after)
    return response


def handle_missing_card(request: Request[Any, Any, Any], exc: PaymentMethodNotFoundError) -> Response[Any]:
    """A card that is not on file for the customer: 404."""
    return problem_response(404, "No such payment method.", extra={"code": "not_found"})


_MISSING = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def _field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Name the field also where the validator names only the body (missing or unknown fields)."""
    named = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        error = dict(error)
        message = str(error.get("message", ""))
        found = _MISSING.search(message) or _UNKNOWN.search(message)
        if error.get("key") == "data":
            error["key"] = found.group(1) if found else "(body)"
            if not found and message == "'data'":
                error["message"] = "A JSON body is required"
        elif found:
            error["key"] = f"{error.get('key')}.{found.group(1)}"
        named.append(error)
    return named


def handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """A body that does not match its schema: 422 naming each field; other validation failures stay 400."""
    errors = exc.extra if isinstance(exc.extra, list) else []
    if not any(isinstance(error, dict) and error.get("source") == "body" for error in errors):
        return handle_http_exception(request, exc)
    mark_not_run(request.scope)
    named = _field_errors(errors)
    detail = naming_fields(named) or "The request body does not match its schema."
    return problem_response(422, detail, extra={"errors": named})


class BillingController(Controller):
    """Base of the billing API's controllers: ledger refusals and schema errors as problem documents."""

    exception_handlers = {
        BillingError: handle_billing_error,
        PaymentMethodNotFoundError: handle_missing_card,
        ValidationException: handle_validation,
    }


async def tenant_of_object(
    request: Request[Any, Any, Any], principal: ApiPrincipal, kind: str, object_id: str
) -> Tenant:
    """The merchant owning ``object_id`` (a ``kind`` of the ledger) that the key may act on; else 404.

    A merchant key (or any key on a merchant host) reaches only its merchant's objects; an ISO
    key on the API host any merchant's of its ISO (row-level security confines the lookup).
    """
    async with tenant_transaction(principal.iso_id):
        rows = await fetch(
            f"SELECT merchant_id FROM {TABLES[kind]} WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2)",
            object_id,
            merchant_scope(request, principal),
        )
    if not rows:
        raise NotFoundError(kind, object_id)
    return await merchant_tenant(request, principal, rows[0]["merchant_id"])


async def tenant_of_customer(request: Request[Any, Any, Any], principal: ApiPrincipal, customer_id: str) -> Tenant:
    """The merchant of a customer the key may act on; else 404 (``No such customer.``)."""
    async with tenant_transaction(principal.iso_id):
        rows = await fetch(
            "SELECT merchant_id FROM portal_customer WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2)",
            customer_id,
            merchant_scope(request, principal),
        )
    if not rows:
        raise NotFoundException(detail="No such customer.")
    return await merchant_tenant(request, principal, rows[0]["merchant_id"])


async def listing_tenant(
    request: Request[Any, Any, Any], principal: ApiPrincipal, *, customer: str | None, merchant: str | None
) -> Tenant:
    """The merchant a list call reads: the one named, the key's or the host's, or (ISO keys) the customer's."""
    if customer is not None and merchant is None:
        return await tenant_of_customer(request, principal, customer)
    return await merchant_tenant(request, principal, merchant)


def view(model: msgspec.Struct, kind: type[T]) -> T:
    """A ledger Struct as the API shows it (``created_at`` becomes ``created``)."""
    fields = msgspec.structs.asdict(model)
    if "created_at" in fields:
        fields["created"] = fields.pop("created_at")
    return msgspec.convert(fields, kind, from_attributes=True)


class HasId(Protocol):
    """A ledger object (its id is the cursor)."""

    @property
    def id(self) -> str: ...  # noqa: D102


M = TypeVar("M", bound=HasId)


async def paged(
    fetch_page: Callable[[int, str | None], Awaitable[Sequence[M]]], limit: int, after: str | None
) -> tuple[list[M], bool]:
    """One page of ``limit`` items after ``after``, and whether more follow."""
    items = list(await fetch_page(limit, after))
    has_more = len(items) == limit and bool(await fetch_page(1, items[-1].id))
    return items, has_more


def body_time(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 body field as a time; 422 naming ``name`` when it is no real time (``2026-02-30``).

    Times more than :data:`HORIZON` from now are refused too: no billing date lies that far.
    """
    try:
        parsed = parse_time(name, value)
    except ValidationException as exc:
        raise ValidationException(
            detail=exc.detail, extra=[{"key": name, "source": "body", "message": "is not a valid time"}]
        ) from exc
    if parsed is not None and abs(parsed - datetime.now(UTC)) > HORIZON:
        message = "is more than ten years away"
        raise ValidationException(
            detail=f"'{name}' {message}.", extra=[{"key": name, "source": "body", "message": message}]
        )
    return parsed
