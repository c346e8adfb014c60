"""The billing details page: the name, address and tax id on the customer's invoices and PDFs.

Offered where the merchant's ``allow_billing_details_update`` is on; elsewhere the page and its
``POST`` answer 403 and nothing is written. Core validates the details per country and emits
``customer.updated`` (audited, sent to webhooks) when something changed.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect

from portal.sdk import (
    N_,
    BillingDetails,
    BillingDetailsError,
    current_language,
    customer_actor,
    customer_of,
    get_billing_details,
    optional_customer,
    platform_of,
    render_page,
    tenant_of,
    update_billing_details,
)
from portal.sdk import gettext as _
from portal_invoices.billing import FIELDS
from portal_invoices.messages import refusal_text
from portal_invoices.web import KEY, Form, Page, refused_page, settings_of

ACCOUNT_PATH = "/account/billing"
LABELS = {
    "name": N_("Name or company"),
    "line1": N_("Address line 1"),
    "line2": N_("Address line 2 (optional)"),
    "city": N_("City"),
    "postal_code": N_("Postal code"),
    "state": N_("State, county or region"),
    "country": N_("Country code (such as US, GB, DE)"),
    "tax_id": N_("Tax ID (optional)"),
}
PROBLEMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^is not (valid )?text$"), N_("%(field)s is not valid text.")),
    (re.compile(r"^must be one line of text$"), N_("%(field)s must be one line of text.")),
    (re.compile(r"^is longer than (?P<count>\d+) characters$"), N_("%(field)s is longer than %(count)s characters.")),
    (re.compile(r"^is not an ISO 3166-1"), N_("%(field)s is not a two-letter country code (such as US, GB, DE).")),
    (re.compile(r"^is required with an address$"), N_("%(field)s is required with an address.")),
    (re.compile(r"^is not a VAT number of (?P<country>[A-Z]{2})"), N_("%(field)s is not a VAT number of %(country)s.")),
    (re.compile(r"^is not a tax id"), N_("%(field)s is not a valid tax ID (letters, digits, spaces, . / -).")),
    (re.compile(r"^is not "), N_("%(field)s is not a valid postal code for this country.")),
]
"""Core's reasons for refusing billing details, in words of other languages (English shows core's own)."""
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
        title=_("Billing details"),
        active_nav=KEY,
        status_code=400 if error else 200,
        fields=[
            {
                "name": name,
                "label": _(LABELS[name]),
                "value": values.get(name) or "",
                "autocomplete": AUTOCOMPLETE[name],
            }
            for name in FIELDS
        ],
        error_field=error.field if error else None,
        error=_problem(error) if error else None,
        saved=saved,
    )


def _problem(error: BillingDetailsError) -> str:
    """Why the details were refused, naming the field: core's words in English, translated ones otherwise."""
    label = LABELS.get(error.field)
    if label is None or current_language() == "en":
        return f"{_(label) if label else error.field} {error.message}."
    for pattern, words in PROBLEMS:
        found = pattern.match(error.message)
        if found is not None and (error.field == "postal_code" or not words.endswith("for this country.")):
            return _(words) % {"field": _(label), **found.groupdict()}
    return _("%(field)s is not valid. Please check it.") % {"field": _(label)}


@get(ACCOUNT_PATH, name="invoices_billing_details")
async def billing_form(request: Request[Any, Any, Any], done: FromQuery[str] = "") -> Page:
    """The customer's billing details, in a form."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    if not settings_of(tenant).allow_billing_details_update:
        return refused_page(request, tenant, refusal_text("details_not_allowed"))
    details = await get_billing_details(tenant, customer.id)
    values = {name: getattr(details, name) for name in FIELDS} if details else {}
    return _page(request, values, saved=done == "saved")


@post(ACCOUNT_PATH, name="invoices_billing_details_update", status_code=303)
async def update_billing(request: Request[Any, Any, Any], data: Form) -> Page:
    """Replace the customer's billing details (all fields; an empty field clears it)."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    if not settings_of(tenant).allow_billing_details_update:
        return refused_page(request, tenant, refusal_text("details_not_allowed"))
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
