"""API authentication: the key decides the tenant; a merchant host refuses other merchants' keys."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException

from portal.api.keys import ApiPrincipal, principal_for
from portal.db.engine import fetch, tenant_transaction
from portal.tenancy.models import Tenant
from portal.web.state import TENANT_KEY, platform_of

BEARER = {"www-authenticate": 'Bearer realm="portal"'}
PLUGIN_OPTION = "api_plugin"
"""Route option naming the plugin that serves an API route (set by the API router, read by :func:`api_merchant`)."""


async def api_principal(request: Request[Any, Any, Any]) -> ApiPrincipal:
    """Dependency: the caller's principal, checked against the host it called."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise NotAuthorizedException(detail="Send an API key as 'Authorization: Bearer <key>'.", headers=BEARER)
    principal = await principal_for(secret.strip())
    if principal is None:
        raise NotAuthorizedException(detail="This API key is not valid or was revoked.", headers=BEARER)
    tenant = request.scope.get(TENANT_KEY)
    if isinstance(tenant, Tenant):
        merchant = tenant.merchant
        if principal.iso_id != merchant.iso_id or principal.merchant_id not in (None, merchant.id):
            raise PermissionDeniedException(detail="This API key belongs to another merchant.")
    return principal


def merchant_scope(request: Request[Any, Any, Any], principal: ApiPrincipal) -> str | None:
    """The one merchant a key (or the host) confines lookups by id to; ``None`` for ISO keys on the API host."""
    host_tenant = request.scope.get(TENANT_KEY)
    return principal.merchant_id or (host_tenant.merchant.id if isinstance(host_tenant, Tenant) else None)


def require(principal: ApiPrincipal, scope: str) -> None:
    """403 unless the key carries ``scope``."""
    if scope not in principal.scopes:
        raise PermissionDeniedException(detail=f"This API key lacks the '{scope}' scope.")


async def merchant_tenant(request: Request[Any, Any, Any], principal: ApiPrincipal, merchant: str | None) -> Tenant:
    """The merchant a call acts on: the key's own, the host's, or (ISO keys) the one named."""
    host_tenant = request.scope.get(TENANT_KEY)
    platform = platform_of(request)
    own_id = merchant_scope(request, principal)
    if own_id is not None:
        # A merchant key acts on its merchant; any key on a merchant host acts on that merchant
        # (api_principal already checked the key may act there, so the host's tenant serves).
        if isinstance(host_tenant, Tenant) and host_tenant.merchant.id == own_id:
            tenant: Tenant | None = host_tenant
        else:
            tenant = await platform.tenants.load_merchant(principal.iso_id, own_id)
        if tenant is None or merchant not in (None, tenant.merchant.id, tenant.merchant.slug):
            raise NotFoundException(detail="No such merchant.")
        return tenant
    if merchant is None:
        raise NotFoundException(detail="An ISO key must name the merchant ('merchant': its id or slug).")
    async with tenant_transaction(principal.iso_id):
        rows = await fetch("SELECT id FROM portal_merchant WHERE id = $1 OR slug = $1", merchant)
    tenant = await platform.tenants.load_merchant(principal.iso_id, rows[0]["id"]) if rows else None
    if tenant is None:
        raise NotFoundException(detail="No such merchant.")
    return tenant


async def api_merchant(
    request: Request[Any, Any, Any], principal: ApiPrincipal, merchant: str | None = None, *, scope: str
) -> Tenant:
    """The merchant a plugin's API call acts on, after checking the key's ``scope`` (403 without it).

    As :func:`merchant_tenant` (the key's merchant, the host's, or for ISO keys the one named),
    and 404 where the plugin serving the route is off for that merchant.
    """
    require(principal, scope)
    tenant = await merchant_tenant(request, principal, merchant)
    plugin = request.route_handler.opt.get(PLUGIN_OPTION)
    if plugin is not None and plugin not in tenant.enabled_plugins:
        raise NotFoundException(detail="No such merchant.")
    return tenant
