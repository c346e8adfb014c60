"""The billing details page: the name, address and tax id on the customer's invoices and PDFs.

Offered where the merchant's ``allow_billing_details_update`` is on; elsewhere the page and its
``POST`` answer 403 and nothing is written. Core validates the details per country and emits
``customer.updated`` (audited, sent to webhooks) when something changed.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect

from portal.sdk import (
    BillingDetails,
    BillingDetailsError,
    customer_actor,
    customer_of,
    get_billing_details,
    optional_customer,
    platform_of,
    render_page,
    tenant_of,
    update_billing_details,
)
from portal_invoices.billing import FIELDS
from portal_invoices.messages import REFUSALS
from portal_invoices.web import KEY, Form, Page, refused_page, settings_of

ACCOUNT_PATH = "/account/billing"
LABELS = {
    "name": "Name or company",
    "line1": "Address line 1",
    "line2": "Address line 2 (optional)",
    "city": "City",
    "postal_code": "Postal code",
    "state": "State, county or region",
    "country": "Country code (such as US, GB, DE)",
    "tax_id": "Tax ID (optional)",
}
AUTOCOMPLETE = {
    "name": "billing organization",
    "line1": "billing address-line1",
    "line2": "billing address-line2",
    "city": "billing address-level2",
    "postal_code": "billing postal-code",
    "state": "billing address-level1",
    "country": "billing country",
    "tax_id": "off",
}


def _page(
    request: Request[Any, Any, Any], values: dict[str, str], *, error: BillingDetailsError | None = None,
    saved: bool = False,
) -> Page:  # fmt: skip
    tenant = tenant_of(request)
    return render_page(
        request,
        "invoices/account.html",
        tenant=tenant,
        title="Billing details",
        active_nav=KEY,
        status_code=400 if error else 200,
        fields=[
            {"name": name, "label": LABELS[name], "value": values.get(name) or "", "autocomplete": AUTOCOMPLETE[name]}
            for name in FIELDS
        ],
        error_field=error.field if error else None,
        error=f"{LABELS.get(error.field, error.field)} {error.message}." if error else None,
        saved=saved,
    )


@get(ACCOUNT_PATH, name="invoices_billing_details")
async def billing_form(request: Request[Any, Any, Any], done: FromQuery[str] = "") -> Page:
    """The customer's billing details, in a form."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    if not settings_of(tenant).allow_billing_details_update:
        return refused_page(request, tenant, REFUSALS["details_not_allowed"])
    details = await get_billing_details(tenant, customer.id)
    values = {name: getattr(details, name) for name in FIELDS} if details else {}
    return _page(request, values, saved=done == "saved")


@post(ACCOUNT_PATH, name="invoices_billing_details_update", status_code=303)
async def update_billing(request: Request[Any, Any, Any], data: Form) -> Page:
    """Replace the customer's billing details (all fields; an empty field clears it)."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    if not settings_of(tenant).allow_billing_details_update:
        return refused_page(request, tenant, REFUSALS["details_not_allowed"])
    values = {name: str(data.get(name, ""))[:1000] for name in FIELDS}
    details = BillingDetails(**{name: value.strip() or None for name, value in values.items()})
    try:
        for name, value in values.items():
            if not value.isprintable() and value.strip():
                raise BillingDetailsError(name, "must be one line of text")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BillingDetailsError(name, "is not valid text") from exc
        await update_billing_details(
            tenant, customer.id, details, actor=customer_actor(request, customer.id),
            registry=platform_of(request).registry,
        )  # fmt: skip
    except BillingDetailsError as exc:
        return _page(request, values, error=exc)
    return Redirect(f"{ACCOUNT_PATH}?done=saved", status_code=303)
