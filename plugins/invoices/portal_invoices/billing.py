"""The customer's billing details (name, address, tax id) as invoices and PDFs print them.

Core keeps them (``portal.sdk.get_billing_details``); a core without them prints none.
"""

from __future__ import annotations

from typing import Any

import portal.sdk as sdk
from portal.sdk import Tenant

FIELDS = ("name", "line1", "line2", "city", "postal_code", "state", "country", "tax_id")


async def billing_details_of(tenant: Tenant, customer_id: str) -> dict[str, Any] | None:
    """The customer's billing details as template values (``lines`` of the address), or None."""
    get = getattr(sdk, "get_billing_details", None)
    if get is None:
        return None
    details = await get(tenant, customer_id)
    if details is None:
        return None
    values = {name: getattr(details, name, None) for name in FIELDS}
    place = " ".join(str(part) for part in (values["postal_code"], values["city"]) if part)
    lines = [values["line1"], values["line2"], place, values["state"], values["country"]]
    return {"name": values["name"], "lines": [line for line in lines if line], "tax_id": values["tax_id"]}
