"""The pages after a card update retried the invoices in recovery: paid, or declined (try another card).

Neither takes an id: both show the signed-in customer's own cases, found by the session's link.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromQuery
from litestar.response import Redirect

from portal.sdk import N_, optional_customer, render_page, session_of, tenant_of, tenant_transaction
from portal.sdk import gettext as _
from portal_payment_recovery import store
from portal_payment_recovery.landing import DECLINED_PATH, DONE_PATH, failed_charges
from portal_payment_recovery.wording import describe

DECLINES = {
    "declined": N_("Your bank declined the new card."),
    "final": N_("Your bank declined the new card and asked us not to charge it again."),
    "processor": N_("The payment processor could not complete the charge just now."),
    "no_card": N_("We could not find the new card to charge."),
}
"""What the declined page says for each ``?reason=`` (translated where shown); any other reason reads as the first."""


@get(DONE_PATH, name="payment_recovery_done")
async def done(request: Request[Any, Any, Any]) -> Response[Any]:
    """Payment received: what the new card paid."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    session = session_of(request)
    link_id = session.link_id if session else None
    async with tenant_transaction(tenant.merchant.iso_id):
        cases = await store.recovered_with_link(tenant.merchant.id, customer.id, link_id) if link_id else []
        charges = await describe(tenant.merchant, cases)
    return render_page(
        request,
        "payment_recovery/done.html",
        tenant=tenant,
        title=_("Payment received"),
        charges=charges,
        subscription=any(case.subscription_id for case in cases),
    )


@get(DECLINED_PATH, name="payment_recovery_declined")
async def declined(request: Request[Any, Any, Any], reason: FromQuery[str] = "declined") -> Response[Any]:
    """The new card did not pay: why, what is still unpaid, and *Try another card* (the link still works)."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    async with tenant_transaction(tenant.merchant.iso_id):
        unpaid = await failed_charges(tenant.merchant, customer.id)
    return render_page(
        request,
        "payment_recovery/declined.html",
        tenant=tenant,
        title=_("Payment not received"),
        message=_(DECLINES.get(reason, DECLINES["declined"])),
        unpaid=unpaid,
    )


PAGES = [done, declined]
