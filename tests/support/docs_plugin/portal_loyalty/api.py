import msgspec
from litestar import Request, get
from litestar.di import NamedDependency

from portal.sdk import (
    ApiPrincipal,
    ApiRouteSet,
    ApiScope,
    MerchantParam,
    api_merchant,
    fetch,
    hookimpl,
    tenant_transaction,
)


class Balance(msgspec.Struct):
    customer: str
    points: int


@get("/loyalty/balances", summary="List points balances")
async def balances(
    request: Request, principal: NamedDependency[ApiPrincipal], merchant: MerchantParam = None
) -> list[Balance]:
    tenant = await api_merchant(request, principal, merchant, scope="loyalty:read")
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch("SELECT customer_id, points FROM loyalty_account WHERE merchant_id = $1", tenant.merchant.id)
    return [Balance(customer=row["customer_id"], points=row["points"]) for row in rows]


@hookimpl
def portal_api_routes() -> ApiRouteSet:
    return ApiRouteSet(handlers=[balances], scopes=[ApiScope(name="loyalty:read", description="Read balances.")])
