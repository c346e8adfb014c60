"""``/api/v1/customers``: create and look up customers."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery, JSONBody

from portal.api.auth import merchant_scope, merchant_tenant, require
from portal.api.keys import ApiPrincipal
from portal.api.openapi import problem
from portal.api.params import MerchantParam
from portal.api.schemas import Customer, CustomerCreate, CustomerList, CustomerUpdate
from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import Actor, emit
from portal.events.core_types import CustomerPayload
from portal.ids import new_id
from portal.plugins.registry import PluginRegistry
from portal.tenancy.models import Tenant, normalize_email
from portal.web.state import platform_of, request_id_of

COLUMNS = "id, merchant_id, email, name, external_ref, created_at"
CONFLICT = "The merchant already has a customer with this email or external_ref."


def api_actor(request: Request[Any, Any, Any], principal: ApiPrincipal) -> Actor:
    """The audit actor of an API call: the key, the client's address and user agent, the request id."""
    user_agent = request.headers.get("user-agent")
    return Actor(
        type="merchant_api_key" if principal.kind == "merchant" else "iso_api_key",
        id=principal.key_id,
        ip=request.client.host if request.client else None,
        user_agent=user_agent[:1000] if user_agent else None,
        request_id=request_id_of(request),  # decided once per request by the tenant middleware
    )


def _payload(row: dict[str, Any]) -> CustomerPayload:
    return CustomerPayload(
        id=row["id"],
        merchant=row["merchant_id"],
        email=row["email"],
        name=row["name"],
        external_ref=row["external_ref"],
    )


async def _emit_customer(
    registry: PluginRegistry,
    tenant: Tenant,
    event_type: str,
    row: dict[str, Any],
    actor: Actor,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await emit(
        tenant.merchant,
        event_type,
        _payload(row),
        actor=actor,
        target=("customer", row["id"]),
        customer_id=row["id"],
        before=before,
        after=after,
        enabled_plugins=tenant.enabled_plugins,
        registry=registry,
    )


def to_customer(row: dict[str, Any], other_merchants: dict[str, int] | None = None) -> Customer:
    """A table row as the API shows it, with its other-merchant count when a plugin gives one."""
    return Customer(
        id=row["id"],
        merchant=row["merchant_id"],
        email=row["email"],
        name=row["name"],
        external_ref=row["external_ref"],
        created=row["created_at"],
        other_merchants_count=None if other_merchants is None else other_merchants.get(normalize_email(row["email"])),
    )


async def to_customers(request: Request[Any, Any, Any], tenant: Tenant, rows: list[dict[str, Any]]) -> list[Customer]:
    """Rows of ``tenant``'s customers as the API shows them, counts from ``portal_other_merchants_counts``."""
    emails = sorted({normalize_email(row["email"]) for row in rows})
    async with tenant_transaction(tenant.merchant.iso_id):
        counts = await platform_of(request).registry.other_merchants_counts(tenant, emails) if emails else None
    return [to_customer(row, counts) for row in rows]


class CustomerController(Controller):
    """Customers of the caller's merchant (or, for ISO keys, of the ISO's merchants)."""

    path = "/customers"
    tags = ["customers"]

    @post("/", status_code=201, summary="Create a customer", responses={409: problem(409, CONFLICT)})
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], data: JSONBody[CustomerCreate]
    ) -> Customer:
        """Create a customer; 409 when the merchant already has one with this email or reference."""
        require(principal, "customers:write")
        tenant = await merchant_tenant(request, principal, data.merchant)
        merchant = tenant.merchant
        actor = api_actor(request, principal)
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
                await _emit_customer(platform_of(request).registry, tenant, "customer.created", rows[0], actor)
        except asyncpg.UniqueViolationError as exc:
            raise HTTPException(status_code=409, detail=CONFLICT) from exc
        return (await to_customers(request, tenant, rows))[0]

    @patch("/{customer_id:str}", summary="Update a customer", responses={409: problem(409, CONFLICT)})
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        customer_id: FromPath[str],
        data: JSONBody[CustomerUpdate],
    ) -> Customer:
        """Change name, email or external_ref; emits ``customer.updated`` with the changed fields."""
        require(principal, "customers:write")
        changes = {
            name: getattr(data, name)
            for name in ("email", "name", "external_ref")
            if getattr(data, name) is not msgspec.UNSET
        }
        if not changes:
            raise ValidationException(detail="Give at least one of 'name', 'email' or 'external_ref'.")
        found = await find_customer(request, principal, customer_id)
        tenant = await merchant_tenant(request, principal, found["merchant_id"])
        merchant = tenant.merchant
        actor = api_actor(request, principal)
        try:
            async with tenant_transaction(merchant.iso_id):
                current = await fetch(
                    f"SELECT {COLUMNS} FROM portal_customer WHERE id = $1 AND merchant_id = $2 FOR UPDATE",
                    found["id"],
                    merchant.id,
                )
                if not current:
                    raise NotFoundException(detail="No such customer.")
                row = current[0]
                changed = {name: value for name, value in changes.items() if row[name] != value}
                if not changed:
                    return (await to_customers(request, tenant, [row]))[0]
                email = changed.get("email", row["email"])
                rows = await fetch(
                    f"""
                    UPDATE portal_customer SET email = $3, email_normalized = $4, name = $5, external_ref = $6,
                           updated_at = now()
                     WHERE id = $1 AND merchant_id = $2 RETURNING {COLUMNS}
                    """,
                    row["id"],
                    merchant.id,
                    email,
                    normalize_email(email),
                    changed.get("name", row["name"]),
                    changed.get("external_ref", row["external_ref"]),
                )
                before = {name: row[name] for name in changed}
                await _emit_customer(
                    platform_of(request).registry,
                    tenant,
                    "customer.updated",
                    rows[0],
                    actor,
                    before=before,
                    after=changed,
                )
        except asyncpg.UniqueViolationError as exc:
            raise HTTPException(status_code=409, detail=CONFLICT) from exc
        return (await to_customers(request, tenant, rows))[0]

    @get("/", summary="Find customers by email or external reference")
    async def lookup(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        email: FromQuery[str | None] = None,
        external_ref: FromQuery[str | None] = None,
        merchant: MerchantParam = None,
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
        return CustomerList(data=await to_customers(request, tenant, rows))

    @get("/{customer_id:str}", summary="Retrieve a customer")
    async def retrieve(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], customer_id: FromPath[str]
    ) -> Customer:
        """One customer; 404 for another tenant's id."""
        require(principal, "customers:read")
        row = await find_customer(request, principal, customer_id)
        try:
            tenant = await merchant_tenant(request, principal, row["merchant_id"])
        except NotFoundException:  # a suspended merchant's customer: still readable, without a count
            return to_customer(row)
        return (await to_customers(request, tenant, [row]))[0]


async def find_customer(request: Request[Any, Any, Any], principal: ApiPrincipal, customer_id: str) -> dict[str, Any]:
    """A customer the key may act on (its merchant's, or its ISO's for ISO keys); else 404."""
    async with tenant_transaction(principal.iso_id):
        rows = await fetch(
            f"SELECT {COLUMNS} FROM portal_customer WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2)",
            customer_id,
            merchant_scope(request, principal),
        )
    if not rows:
        raise NotFoundException(detail="No such customer.")
    return rows[0]
