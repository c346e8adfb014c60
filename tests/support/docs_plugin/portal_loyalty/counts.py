from portal.sdk import Tenant, fetch, hookimpl, tenant_transaction


@hookimpl
async def portal_other_merchants_counts(tenant: Tenant, emails: list[str]) -> dict[str, int]:
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT email_normalized AS email, count(*) AS n FROM portal_customer "
            "WHERE email_normalized = ANY($1::text[]) AND merchant_id <> $2 GROUP BY 1",
            emails,
            tenant.merchant.id,
        )
    return {row["email"]: row["n"] for row in rows}
