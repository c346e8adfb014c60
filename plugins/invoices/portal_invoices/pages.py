"""The invoice list, the page of one invoice and the payment history."""

from __future__ import annotations

from typing import Any, cast

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from portal.sdk import gettext as _
from portal.sdk import (
    has_prefix,
    optional_customer,
    pgettext,
    render_page,
    session_of,
    tenant_of,
    tenant_transaction,
)
from portal_invoices import store
from portal_invoices.billing import billing_details_of
from portal_invoices.messages import done_text
from portal_invoices.pdf import download
from portal_invoices.views import invoice_row, payment_row
from portal_invoices.web import HISTORY_PATH, ITEM, KEY, LIST_PATH, Page, formats, now, own, settings_of

FILTERS = ("all", "open", "paid")
"""The list's filters."""


def _filters() -> dict[str, str]:
    """Each filter's button words, in the current language."""
    return {
        "all": pgettext("invoice filter", "All"),
        "open": pgettext("invoice filter", "Open"),
        "paid": pgettext("invoice filter", "Paid"),
    }


@get(LIST_PATH, name="invoices_list")
async def list_invoices(
    request: Request[Any, Any, Any], status: FromQuery[str] = "all", after: FromQuery[str] = ""
) -> Page:
    """The customer's invoices, newest first, 25 a page; ``status`` all, open or paid."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    wanted = status if status in FILTERS else "all"
    cursor = after[:64].replace("\x00", "") or None  # an id that is not one of the customer's invoices pages to nothing
    settings = settings_of(tenant)
    async with tenant_transaction(tenant.merchant.iso_id):
        invoices, more = await store.invoice_page(
            tenant.merchant.id, customer.id, cast(store.Filter, wanted), show_void=settings.show_void, after=cursor
        )
    fmt = formats(request, tenant)
    at = now()
    return render_page(
        request,
        "invoices/list.html",
        tenant=tenant,
        title=_("Invoices"),
        active_nav=KEY,
        invoices=[invoice_row(invoice, fmt, at) for invoice in invoices],
        filters=_filters(),
        status=wanted,
        next_after=invoices[-1].id if more else None,
        paged=cursor is not None,
        can_pay=settings.allow_pay,
        can_edit_details=settings.allow_billing_details_update,
    )


@get(ITEM, name="invoices_detail")
async def detail(request: Request[Any, Any, Any], invoice_id: FromPath[str], done: FromQuery[str] = "") -> Page:
    """One invoice: merchant and customer, lines, totals, what is paid and due, payment attempts."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    if invoice_id.endswith(".pdf"):  # /invoices/{id}.pdf: the path segment is the invoice id and its suffix
        return await download(request, tenant, customer, invoice_id.removesuffix(".pdf"))
    settings = settings_of(tenant)
    async with tenant_transaction(tenant.merchant.iso_id):
        invoice = await own(tenant, customer, invoice_id)
        payments = await store.payments_of_invoice(tenant.merchant.id, customer.id, invoice.id)
        details = await billing_details_of(tenant, customer.id)
    fmt = formats(request, tenant)
    row = invoice_row(invoice, fmt, now())
    session = session_of(request)
    notice = done_text(done, row.number)
    return render_page(
        request,
        "invoices/detail.html",
        tenant=tenant,
        title=_("Invoice %(number)s") % {"number": row.number},
        active_nav=KEY,
        invoice=row,
        lines=[
            {
                "description": line.description,
                "quantity": line.quantity,
                "unit": fmt.money(line.unit_amount, invoice.currency),
                "amount": fmt.money(line.amount, invoice.currency),
                "period": _("%(start)s to %(end)s")
                % {"start": fmt.day(line.period_start), "end": fmt.day(line.period_end)}
                if line.period_start and line.period_end
                else "",
            }
            for line in invoice.lines
        ],
        subtotal=fmt.money(invoice.subtotal, invoice.currency),
        tax=fmt.money(invoice.tax, invoice.currency),
        amount_paid=fmt.money(invoice.amount_paid, invoice.currency),
        paid_on=fmt.day(invoice.paid_at) if invoice.paid_at else None,
        customer_email=customer.email,
        customer_name=customer.name,
        details=details,
        payments=[payment_row(payment, fmt) for payment in payments],
        notice=notice,
        return_after=session.return_url if notice and session else None,
        can_pay=settings.allow_pay and row.payable,
        can_edit_details=settings.allow_billing_details_update,
        pdf_href=f"{LIST_PATH}/{invoice.id}.pdf",
    )


@get(HISTORY_PATH, name="invoices_history")
async def history(request: Request[Any, Any, Any]) -> Page:
    """Every payment of the customer across invoices, newest first, with receipts."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    async with tenant_transaction(tenant.merchant.iso_id):
        payments = await store.payments_of_customer(tenant.merchant.id, customer.id)
    fmt = formats(request, tenant)
    return render_page(
        request,
        "invoices/history.html",
        tenant=tenant,
        title=_("Payment history"),
        active_nav=KEY,
        payments=[payment_row(payment, fmt) for payment in payments],
    )


@get(HISTORY_PATH + "/{payment_id:str}", name="invoices_receipt")
async def receipt(request: Request[Any, Any, Any], payment_id: FromPath[str]) -> Page:
    """The receipt of one approved payment."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    if not has_prefix(payment_id, "pay") or len(payment_id) > 40:
        raise NotFoundException()
    async with tenant_transaction(tenant.merchant.iso_id):
        payment = await store.payment(tenant.merchant.id, customer.id, payment_id)
    if payment is None or payment.outcome != "approved":
        raise NotFoundException()
    fmt = formats(request, tenant)
    return render_page(
        request,
        "invoices/receipt.html",
        tenant=tenant,
        title=_("Receipt for %(number)s") % {"number": payment.invoice_number},
        active_nav=KEY,
        payment=payment_row(payment, fmt),
        customer_email=customer.email,
    )
