from typing import Any

from litestar import Request, Response, get

from portal.sdk import RouteSet, customer_of, fetch, hookimpl, render_page, tenant_of, tenant_transaction


@get("/loyalty", name="loyalty_page")
async def loyalty_page(request: Request[Any, Any, Any]) -> Response[str]:
    tenant = tenant_of(request)
    customer = customer_of(request)
    settings = tenant.plugin_settings["loyalty"]
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT points FROM loyalty_account WHERE merchant_id = $1 AND customer_id = $2",
            tenant.merchant.id,
            customer.id,
        )
    return render_page(
        request,
        "loyalty/page.html",
        tenant=tenant,
        title=settings.program_name,
        active_nav="loyalty",
        points=rows[0]["points"] if rows else 0,
        program_name=settings.program_name,
    )


@hookimpl
def portal_routes() -> RouteSet:
    return RouteSet(handlers=[loyalty_page])
