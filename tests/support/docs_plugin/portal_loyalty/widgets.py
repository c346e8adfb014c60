from typing import Any

from portal.sdk import PageContext, Widget, fetch, hookimpl, tenant_transaction


async def load_points(context: PageContext) -> dict[str, Any]:
    async with tenant_transaction(context.iso_id):
        rows = await fetch(
            "SELECT points FROM loyalty_account WHERE merchant_id = $1 AND customer_id = $2",
            context.merchant.id,
            context.customer.id,
        )
    return {"points": rows[0]["points"] if rows else 0}


@hookimpl
def portal_overview_widgets(context: PageContext) -> list[Widget]:
    return [Widget(key="loyalty", title="Points", template="loyalty/widget.html", load=load_points, order=50)]
