from typing import Any

from portal.sdk import PageContext, fetch, hookimpl, tenant_transaction

POINTS = "loyalty_points"


@hookimpl
async def portal_before_page(context: PageContext) -> None:
    async with tenant_transaction(context.iso_id):
        rows = await fetch("SELECT points FROM loyalty_account WHERE customer_id = $1", context.customer.id)
    setattr(context.request.state, POINTS, rows[0]["points"] if rows else 0)


@hookimpl
def portal_template_vars(context: PageContext, template: str) -> dict[str, Any]:
    return {POINTS: getattr(context.request.state, POINTS, 0)}
