"""Disclosure on the dashboard side.

Merchant keys (and ISO keys) read how many other merchants a customer can switch to, with their
names only when the ISO allows it. ISO keys list a customer's overlaps by email across the ISO's
merchants and set that policy.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, put
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.sdk import ApiPrincipal, ApiScope, api_merchant, fetch, normalize_email, tenant_transaction
from portal_merchant_switch import policy
from portal_merchant_switch.settings import KEY
from portal_merchant_switch.siblings import accounts, others

READ = ApiScope(name="merchant_switch:read", description="ISO keys: list a customer's overlaps across merchants.")
WRITE = ApiScope(
    name="merchant_switch:write", description="ISO keys: set whether merchants see other merchants' names."
)
EmailQuery = Annotated[str, QueryParameter(min_length=3, max_length=254, description="The customer's email")]


class OtherMerchants(msgspec.Struct, kw_only=True):
    """The other merchants of the ISO a customer can switch to."""

    customer: str
    count: int
    merchant_names: list[str] | None
    """Their public names when the ISO discloses them to merchants; ``null`` otherwise."""
    object: Literal["merchant_switch.other_merchants"] = "merchant_switch.other_merchants"


class Overlap(msgspec.Struct, kw_only=True):
    """One customer record with the email, at one merchant of the ISO."""

    customer: str
    merchant: str
    merchant_name: str
    merchant_status: str
    switch_enabled: bool


class OverlapList(msgspec.Struct, kw_only=True):
    """Every record with one normalised email across the ISO's merchants."""

    email: str
    data: list[Overlap]
    object: Literal["list"] = "list"


class Policy(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ISO's disclosure policy."""

    disclose_merchant_names: bool
    """Merchants see the names of a customer's other merchants (``other-merchants``)."""


def _iso_only(principal: ApiPrincipal, scope: ApiScope) -> str:
    if principal.kind != "iso":
        raise PermissionDeniedException(detail="This route takes an ISO key.")
    if scope.name not in principal.scopes:
        raise PermissionDeniedException(detail=f"This API key lacks the '{scope.name}' scope.")
    return principal.iso_id


@get("/customers/{customer_id:str}/other-merchants", summary="Count a customer's other merchants")
async def other_merchants(
    request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], customer_id: FromPath[str]
) -> OtherMerchants:
    """How many other merchants of the ISO the customer can switch to; names if the ISO allows."""
    async with tenant_transaction(principal.iso_id):
        rows = await fetch("SELECT merchant_id, email_normalized FROM portal_customer WHERE id = $1", customer_id)
    if not rows:
        raise NotFoundException(detail="No such customer.")
    tenant = await api_merchant(request, principal, rows[0]["merchant_id"], scope="customers:read")
    iso_id = tenant.merchant.iso_id
    async with tenant_transaction(iso_id):
        siblings = others(await accounts(iso_id, rows[0]["email_normalized"]), tenant.merchant.id)
        disclosed = await policy.discloses_names(iso_id)
    return OtherMerchants(
        customer=customer_id, count=len(siblings), merchant_names=[s.name for s in siblings] if disclosed else None
    )


@get("/merchant-switch/overlaps", summary="List a customer's records across the ISO's merchants")
async def overlaps(principal: NamedDependency[ApiPrincipal], email: EmailQuery) -> OverlapList:
    """ISO keys: every record with this normalised email at the ISO's merchants, switching on or off."""
    iso_id = _iso_only(principal, READ)
    normalized = normalize_email(email)
    async with tenant_transaction(iso_id):
        rows = await fetch(
            """
            SELECT c.id, m.id AS merchant_id, m.name, m.status, coalesce(a.enabled, false) AS switch_enabled
              FROM portal_customer c
              JOIN portal_merchant m ON m.id = c.merchant_id AND m.iso_id = c.iso_id
              LEFT JOIN portal_plugin_activation a ON a.merchant_id = m.id AND a.plugin_key = $3
             WHERE c.iso_id = $1 AND c.email_normalized = $2
             ORDER BY m.name, m.id
            """,
            iso_id,
            normalized,
            KEY,
        )
    data = [
        Overlap(
            customer=r["id"],
            merchant=r["merchant_id"],
            merchant_name=r["name"],
            merchant_status=r["status"],
            switch_enabled=r["switch_enabled"],
        )
        for r in rows
    ]
    return OverlapList(email=normalized, data=data)


@get("/merchant-switch/policy", summary="Read the ISO's disclosure policy")
async def read_policy(principal: NamedDependency[ApiPrincipal]) -> Policy:
    """ISO keys: whether the ISO's merchants see a customer's other merchants' names."""
    iso_id = _iso_only(principal, READ)
    async with tenant_transaction(iso_id):
        return Policy(disclose_merchant_names=await policy.discloses_names(iso_id))


@put("/merchant-switch/policy", summary="Set the ISO's disclosure policy")
async def write_policy(
    request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], data: JSONBody[Policy]
) -> Policy:
    """ISO keys: let the ISO's merchants see (or stop seeing) a customer's other merchants' names."""
    iso_id = _iso_only(principal, WRITE)
    try:  # strictly: 0 or "true" is not a boolean here
        data = msgspec.json.decode(await request.body(), type=Policy, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(detail=f"Invalid policy: {exc}") from exc
    async with tenant_transaction(iso_id):
        await policy.set_discloses_names(iso_id, data.disclose_merchant_names)
    return data


API_ROUTES = [other_merchants, overlaps, read_policy, write_policy]
SCOPES = [READ, WRITE]
