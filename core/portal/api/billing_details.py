"""``/api/v1/customers/{id}/billing-details``: read and change a customer's billing details."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from portal.api.auth import merchant_tenant, require
from portal.api.billing.common import UNPROCESSABLE, BillingController
from portal.api.customers import api_actor, find_customer
from portal.api.keys import ApiPrincipal
from portal.api.openapi import problem
from portal.customers.billing import (
    FIELDS,
    BillingDetails,
    BillingDetailsError,
    get_billing_details,
    update_billing_details,
)
from portal.web.errors import problem_response
from portal.web.input_policy import ONE_LINE
from portal.web.state import platform_of

Line200 = Annotated[str, msgspec.Meta(pattern=ONE_LINE, max_length=200, description="One line of text")]
Line100 = Annotated[str, msgspec.Meta(pattern=ONE_LINE, max_length=100, description="One line of text")]
Line40 = Annotated[str, msgspec.Meta(pattern=ONE_LINE, max_length=40, description="One line of text")]
Line20 = Annotated[str, msgspec.Meta(pattern=ONE_LINE, max_length=20, description="One line of text")]


class BillingDetailsUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change billing details: given fields are set (``null`` or ``""`` clears one), others are kept."""

    name: Line200 | msgspec.UnsetType | None = msgspec.UNSET
    line1: Line200 | msgspec.UnsetType | None = msgspec.UNSET
    line2: Line200 | msgspec.UnsetType | None = msgspec.UNSET
    city: Line100 | msgspec.UnsetType | None = msgspec.UNSET
    postal_code: Line20 | msgspec.UnsetType | None = msgspec.UNSET
    """Checked against the country: US ZIP, UK postcode, Canadian postal code, 5 digits in DE and FR..."""
    state: Line100 | msgspec.UnsetType | None = msgspec.UNSET
    country: Line20 | msgspec.UnsetType | None = msgspec.UNSET
    """ISO 3166-1 alpha-2 code (``US``, ``GB``, ``DE``); required with an address."""
    tax_id: Line40 | msgspec.UnsetType | None = msgspec.UNSET
    """For an EU country, that country's VAT number with its prefix (``DE123456789``)."""


class CustomerBillingDetails(msgspec.Struct, kw_only=True):
    """A customer's billing name, address and tax id (``null`` where not given)."""

    customer: str
    name: str | None
    line1: str | None
    line2: str | None
    city: str | None
    postal_code: str | None
    state: str | None
    country: str | None
    tax_id: str | None
    object: Literal["customer_billing_details"] = "customer_billing_details"


def _view(customer: str, details: BillingDetails | None) -> CustomerBillingDetails:
    return msgspec.convert({"customer": customer, **(details or BillingDetails()).as_dict()}, CustomerBillingDetails)


def handle_details_error(request: Request[Any, Any, Any], exc: BillingDetailsError) -> Response[Any]:
    """Invalid details: 422 naming the field."""
    errors = [{"key": exc.field, "message": exc.message, "source": "body"}]
    return problem_response(
        422, f"Invalid '{exc.field}': {exc.message}.", extra={"code": "invalid_billing_details", "errors": errors}
    )


class BillingDetailsController(BillingController):
    """Billing details of the caller's merchant's customers (ISO keys: of the ISO's merchants')."""

    path = "/customers/{customer_id:str}/billing-details"
    tags = ["customers"]
    exception_handlers = {**BillingController.exception_handlers, BillingDetailsError: handle_details_error}

    @get("/", summary="Retrieve a customer's billing details")
    async def retrieve(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], customer_id: FromPath[str]
    ) -> CustomerBillingDetails:
        """Name, address and tax id; all ``null`` until written. 404 for another tenant's customer."""
        require(principal, "customers:read")
        found = await find_customer(request, principal, customer_id)
        tenant = await merchant_tenant(request, principal, found["merchant_id"])
        return _view(found["id"], await get_billing_details(tenant, found["id"]))

    @post(
        "/",
        status_code=200,
        summary="Change a customer's billing details",
        responses={422: problem(422, UNPROCESSABLE)},
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        customer_id: FromPath[str],
        data: JSONBody[BillingDetailsUpdate],
    ) -> CustomerBillingDetails:
        """Set the given fields, validated per country; emits ``customer.updated`` with before and after."""
        require(principal, "customers:write")
        found = await find_customer(request, principal, customer_id)
        tenant = await merchant_tenant(request, principal, found["merchant_id"])
        actor = api_actor(request, principal)
        given = {name: getattr(data, name) for name in FIELDS if getattr(data, name) is not msgspec.UNSET}
        stored = await update_billing_details(
            tenant,
            found["id"],
            BillingDetails(**given),
            actor=actor,
            registry=platform_of(request).registry,
            only=given.keys(),
        )
        return _view(found["id"], stored)
