"""Invoice PDFs: rendered with WeasyPrint from the theme's ``invoices/pdf.html`` and ``invoices/pdf.css``.

A theme overrides either template like any other. A finalized invoice's PDF is rendered once
per language and kept (``invoices_pdf``): the ``issued`` one while it is open, a ``paid`` one
once it is paid, each in the language of the first reader who asked for it (words, money and
dates in that reader's locale); kept bytes are served as they are, never rendered again. Void
invoices are rendered each time.
Rendering fetches nothing but ``data:`` and ``https:`` images (the merchant's logo).
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from portal.sdk import (
    CustomerView,
    Invoice,
    Platform,
    Tenant,
    current_language,
    pgettext,
    platform_of,
    tenant_transaction,
)
from portal_invoices import store
from portal_invoices.billing import billing_details_of
from portal_invoices.views import Formats, invoice_row, payment_row
from portal_invoices.web import Page, formats, now, own, settings_of

FETCH_SECONDS = 3


FETCHER = URLFetcher(timeout=FETCH_SECONDS, allowed_protocols={"data", "https"}, allow_redirects=False)
"""Only ``data:`` and ``https:`` resources (a logo) are fetched; anything else is refused."""


def kind_of(invoice: Invoice) -> str | None:
    """Which kept PDF the invoice has: ``paid``, ``issued``, or None (void: not kept)."""
    if invoice.status == "paid":
        return "paid"
    if invoice.status in ("open", "uncollectible"):
        return "issued"
    return None


def _stamp(status: str) -> str:
    """The stamp across a paid or void invoice, in the current language."""
    if status == "paid":
        return pgettext("invoice status", "Paid")
    if status == "void":
        return pgettext("invoice status", "Void")
    return ""


def context_for(
    tenant: Tenant, invoice: Invoice, fmt: Formats, customer: dict[str, Any], payments: list[store.Payment]
) -> dict[str, Any]:
    """What ``invoices/pdf.html`` and ``invoices/pdf.css`` are rendered with."""
    row = invoice_row(invoice, fmt, now())
    money = fmt.money
    return {
        "merchant": tenant.merchant,
        "brand": tenant.merchant.brand,
        "invoice": row,
        "status": invoice.status,
        "stamp": _stamp(invoice.status),
        "lang": current_language().replace("_", "-"),
        "page_words": {
            # Translators: the PDF's page footer reads "INV-1042 · page 1 of 2".
            "page": pgettext("PDF page footer", "page"),
            "of": pgettext("PDF page footer", "of"),
        },
        "lines": [
            {
                "description": line.description,
                "quantity": line.quantity,
                "unit": money(line.unit_amount, invoice.currency),
                "amount": money(line.amount, invoice.currency),
            }
            for line in invoice.lines
        ],
        "subtotal": money(invoice.subtotal, invoice.currency),
        "tax": money(invoice.tax, invoice.currency),
        "amount_paid": money(invoice.amount_paid, invoice.currency),
        "paid_on": fmt.day(invoice.paid_at) if invoice.paid_at else None,
        "customer": customer,
        "payments": [payment_row(payment, fmt) for payment in payments if payment.outcome == "approved"],
        "footer": settings_of(tenant).pdf_footer,
    }


def render(platform: Platform, tenant: Tenant, context: dict[str, Any]) -> bytes:
    """The PDF of ``context`` in the merchant's theme (CPU work: call it in a thread)."""
    theme = tenant.merchant.theme_key if tenant.merchant.theme_key in platform.themes.themes else "base"
    css = platform.themes.render(theme, "invoices/pdf.css", context)
    html = platform.themes.render(theme, "invoices/pdf.html", {**context, "css": css})
    pdf = HTML(string=html, url_fetcher=FETCHER, base_url="https://invalid.localhost/").write_pdf()
    assert pdf is not None
    return bytes(pdf)


async def pdf_of(platform: Platform, tenant: Tenant, invoice: Invoice, fmt: Formats, customer: dict[str, Any]) -> bytes:
    """The invoice's kept PDF in the current language, rendered and kept first when there is none yet."""
    merchant = tenant.merchant
    kind = kind_of(invoice)
    language = current_language()
    async with tenant_transaction(merchant.iso_id):
        kept = await store.kept_pdf(merchant.id, invoice.id, kind, language) if kind else None
        if kept is not None:
            return kept
        payments = await store.payments_of_invoice(merchant.id, invoice.customer, invoice.id)
        details = await billing_details_of(tenant, invoice.customer)
    context = context_for(tenant, invoice, fmt, {**customer, "details": details}, payments)
    content = await asyncio.to_thread(render, platform, tenant, context)
    if kind is None:
        return content
    async with tenant_transaction(merchant.iso_id):
        return await store.keep_pdf(merchant.iso_id, merchant.id, invoice.id, kind, language, content)


async def download(request: Request[Any, Any, Any], tenant: Tenant, customer: CustomerView, value: str) -> Page:
    """``GET /invoices/{id}.pdf``: the invoice as a PDF file named after its number."""
    async with tenant_transaction(tenant.merchant.iso_id):
        invoice = await own(tenant, customer, value)
    who = {"name": customer.name, "email": customer.email}
    content = await pdf_of(platform_of(request), tenant, invoice, formats(request, tenant), who)
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{invoice.number}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
