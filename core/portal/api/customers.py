"""``/api/v1/customers``: create and look up customers."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from portal.api.auth import merchant_tenant, require
from portal.api.keys import ApiPrincipal
from portal.api.schemas import Customer, CustomerCreate, CustomerList
from portal.db.engine import fetch, tenant_transaction
from portal.ids import new_id
from portal.tenancy.models import Tenant, normalize_email

COLUMNS = "id, merchant_id, email, name, external_ref, created_at"


def to_customer(row: dict[str, Any]) -> Customer:
    """A table row as the API shows it."""
    return Customer(
        id=row["id"],
        merchant=row["merchant_id"],
        email=row["email"],
        name=row["name"],
        external_ref=row["external_ref"],
        created=row["created_at"],
    )


class CustomerController(Controller):
    """Customers of the caller's merchant (or, for ISO keys, of the ISO's merchants)."""

    path = "/customers"
    tags = ["customers"]

    @post("/", status_code=201, summary="Create a customer")
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], data: JSONBody[CustomerCreate]
    ) -> Customer:
        """Create a customer; 409 when the merchant already has one with this email or reference."""
        require(principal, "customers:write")
        tenant = await merchant_tenant(request, principal, data.merchant)
        merchant = tenant.merchant
        try:
            async with tenant_transaction(merchant.iso_id):
                rows = await fetch(
                    f"""
                    INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name, external_ref)
                    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}
                    """,
                    new_id("cus"),
                    merchant.iso_id,
                    merchant.id,
                    data.email,
                    normalize_email(data.email),
                    data.name,
                    data.external_ref,
                )
        except asyncpg.UniqueViolationError as exc:
            raise HTTPException(
                status_code=409, detail="The merchant already has a customer with this email or external_ref."
            ) from exc
        return to_customer(rows[0])

    @get("/", summary="Find customers by email or external reference")
    async def lookup(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        email: FromQuery[str | None] = None,
        external_ref: FromQuery[str | None] = None,
        merchant: Annotated[str | None, QueryParameter(description="ISO keys: the merchant's id or slug")] = None,
    ) -> CustomerList:
        """Customers whose normalised email or external reference matches."""
        require(principal, "customers:read")
        if (email is None) == (external_ref is None):
            raise ValidationException(detail="Give exactly one of 'email' or 'external_ref'.")
        tenant = await merchant_tenant(request, principal, merchant)
        column, value = ("email_normalized", normalize_email(email)) if email else ("external_ref", external_ref)
        async with tenant_transaction(tenant.merchant.iso_id):
            rows = await fetch(
                f"SELECT {COLUMNS} FROM portal_customer WHERE merchant_id = $1 AND {column} = $2 ORDER BY created_at",
                tenant.merchant.id,
                value,
            )
        return CustomerList(data=[to_customer(row) for row in rows])

    @get("/{customer_id:str}", summary="Retrieve a customer")
    async def retrieve(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], customer_id: FromPath[str]
    ) -> Customer:
        """One customer; 404 for another tenant's id."""
        require(principal, "customers:read")
        row = await find_customer(request, principal, customer_id)
        return to_customer(row)


async def find_customer(request: Request[Any, Any, Any], principal: ApiPrincipal, customer_id: str) -> dict[str, Any]:
    """A customer the key may act on (its merchant's, or its ISO's for ISO keys); else 404."""
    from portal.web.state import TENANT_KEY

    host_tenant = request.scope.get(TENANT_KEY)
    merchant_scope = principal.merchant_id or (host_tenant.merchant.id if isinstance(host_tenant, Tenant) else None)
    async with tenant_transaction(principal.iso_id):
        rows = await fetch(
            f"SELECT {COLUMNS} FROM portal_customer WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2)",
            customer_id,
            merchant_scope,
        )
    if not rows:
        raise NotFoundException(detail="No such customer.")
    return rows[0]
