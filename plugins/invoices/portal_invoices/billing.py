"""The customer's billing details (name, address, tax id) as invoices and PDFs print them.

Core keeps them (``portal.sdk.get_billing_details``, ``update_billing_details``): validated per
country, audited and sent to webhooks as ``customer.updated``.
"""

from __future__ import annotations

from typing import Any

from portal.sdk import BillingDetails, Tenant, get_billing_details

FIELDS = ("name", "line1", "line2", "city", "postal_code", "state", "country", "tax_id")


def printed(details: BillingDetails | None) -> dict[str, Any] | None:
    """The details as template values (``lines`` of the address), or None."""
    if details is None:
        return None
    place = " ".join(part for part in (details.postal_code, details.city) if part)
    lines = [details.line1, details.line2, place, details.state, details.country]
    return {"name": details.name, "lines": [line for line in lines if line], "tax_id": details.tax_id}


async def billing_details_of(tenant: Tenant, customer_id: str) -> dict[str, Any] | None:
    """The customer's billing details as template values, or None when none were written."""
    return printed(await get_billing_details(tenant, customer_id))
