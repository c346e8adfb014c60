from portal.sdk import Tenant, fetch, hookimpl, tenant_transaction


@hookimpl
async def portal_account_summary(tenant: Tenant, customer_id: str) -> str | None:
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT points FROM loyalty_account WHERE merchant_id = $1 AND customer_id = $2",
            tenant.merchant.id,
            customer_id,
        )
    return f"{rows[0]['points']} points" if rows else None
