"""``/api/v1/portal-sessions`` and ``/api/v1/portal-links``: mint and revoke portal links."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody

from portal.access.flows import FlowError, encode_flow
from portal.access.links import issue_link, revoke_link
from portal.api.auth import merchant_tenant, require
from portal.api.customers import find_customer
from portal.api.keys import ApiPrincipal
from portal.api.params import MerchantParam
from portal.api.schemas import FlowData, PortalLinkRevoked, PortalSession, PortalSessionCreate
from portal.db.engine import fetch, tenant_transaction
from portal.tenancy.models import Tenant
from portal.web.state import platform_of


def _flow_value(request: Request[Any, Any, Any], tenant: Tenant, flow: FlowData | None) -> str | None:
    if flow is None:
        return None
    registered = platform_of(request).registry.link_flows.get(flow.type)
    if registered is None or registered[0] not in tenant.enabled_plugins:
        raise HTTPException(status_code=422, detail=f"Flow '{flow.type}' is not available for this merchant.")
    spec = registered[1]
    if spec.parameter is None and flow.id is not None:
        raise HTTPException(status_code=422, detail=f"Flow '{flow.type}' is about no object; send no 'id'.")
    try:
        return encode_flow(spec, flow.id)
    except FlowError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc


class PortalSessionController(Controller):
    """Portal sessions: a link that signs one customer into the merchant's portal."""

    path = "/portal-sessions"
    tags = ["portal sessions"]

    @post("/", status_code=201, summary="Create a portal session")
    async def create(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        data: JSONBody[PortalSessionCreate],
    ) -> PortalSession:
        """Mint a single-use link for a customer, optionally deep-linked into one task."""
        require(principal, "portal_sessions:write")
        customer = await find_customer(request, principal, data.customer)
        tenant = await merchant_tenant(request, principal, customer["merchant_id"])
        flow = _flow_value(request, tenant, data.flow)
        async with tenant_transaction(tenant.merchant.iso_id):
            link = await issue_link(
                platform_of(request).settings,
                tenant,
                customer["id"],
                purpose="portal",
                flow=flow,
                expires_in=timedelta(seconds=data.expires_in),
                source="api",
                return_url=data.return_url,
                locale=data.locale,
            )
        return PortalSession(
            id=link.id,
            url=link.url,
            expires_at=link.expires_at,
            customer=customer["id"],
            return_url=data.return_url,
            flow=flow,
            locale=data.locale,
        )


class PortalLinkController(Controller):
    """Links already issued (or minted offline by the merchant)."""

    path = "/portal-links"
    tags = ["portal links"]

    @post("/{link_id:str}/revoke", status_code=200, summary="Revoke a link")
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        link_id: FromPath[str],
        merchant: MerchantParam = None,
    ) -> PortalLinkRevoked:
        """Revoke a link by its id (the token's ``jti``) and end sessions opened with it."""
        require(principal, "portal_links:write")
        if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", link_id):
            raise NotFoundException(detail="No such link.")
        if principal.merchant_id is None and merchant is None:
            async with tenant_transaction(principal.iso_id):
                rows = await fetch("SELECT DISTINCT merchant_id FROM portal_link WHERE jti = $1", link_id)
            if len(rows) != 1:
                raise NotFoundException(detail="No such link; name its merchant with ?merchant=.")
            merchant = rows[0]["merchant_id"]
        tenant = await merchant_tenant(request, principal, merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            revoked_at = await revoke_link(tenant, link_id)
        return PortalLinkRevoked(id=link_id, revoked_at=revoked_at)
