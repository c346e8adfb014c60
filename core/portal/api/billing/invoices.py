"""``/api/v1/invoices``: one-off invoices, finalizing, paying now, voiding, marking uncollectible."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.api.auth import require
from portal.api.billing.catalog import Cursor
from portal.api.billing.common import (
    CONFLICT_RESPONSE,
    BillingController,
    body_time,
    listing_tenant,
    paged,
    tenant_of_customer,
    tenant_of_object,
    view,
)
from portal.api.billing.schemas import (
    Invoice,
    InvoiceCreate,
    InvoiceList,
    InvoicePay,
    InvoicePayment,
    PaymentAttempt,
)
from portal.api.billing.subscriptions import CustomerFilter
from portal.api.customers import api_actor
from portal.api.keys import ApiPrincipal
from portal.api.params import Limit, MerchantParam
from portal.billing import charges, invoices
from portal.billing.clock import merchant_now
from portal.billing.models import InvoiceStatus, LineInput
from portal.db.engine import tenant_transaction
from portal.web.state import platform_of


class InvoiceController(BillingController):
    """A merchant's invoices: subscriptions' and one-off."""

    path = "/invoices"
    tags = ["billing"]

    @post("/", status_code=201, summary="Create a one-off invoice")
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], data: JSONBody[InvoiceCreate]
    ) -> Invoice:
        """A draft invoice with lines for a customer; finalize it to number and issue it."""
        require(principal, "billing:write")
        due_at = body_time("due_at", data.due_at)
        tenant = await tenant_of_customer(request, principal, data.customer)
        merchant = tenant.merchant
        async with tenant_transaction(merchant.iso_id):
            invoice = await invoices.create(
                tenant,
                customer_id=data.customer,
                currency=data.currency,
                lines=[
                    LineInput(description=line.description, quantity=line.quantity, unit_amount=line.unit_amount)
                    for line in data.lines
                ],
                tax=data.tax,
                due_at=due_at,
                hosted=True,
                now=await merchant_now(merchant.id, iso_id=merchant.iso_id),
                actor=api_actor(request, principal),
            )
        return view(invoice, Invoice)

    @get("/", summary="List invoices")
    async def list_invoices(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        customer: CustomerFilter = None,
        status: Annotated[InvoiceStatus | None, QueryParameter(description="Only this status")] = None,
        starting_after: Cursor = None,
        limit: Limit = 20,
        merchant: MerchantParam = None,
    ) -> InvoiceList:
        """The merchant's invoices, newest first; ISO keys name the merchant or a customer."""
        require(principal, "billing:read")
        tenant = await listing_tenant(request, principal, customer=customer, merchant=merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            items, has_more = await paged(
                lambda size, after: invoices.list(
                    tenant, customer=customer, status=status, limit=size, starting_after=after
                ),
                limit,
                starting_after,
            )
        return InvoiceList(data=[view(item, Invoice) for item in items], has_more=has_more)

    @get("/{invoice_id:str}", summary="Retrieve an invoice")
    async def retrieve(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], invoice_id: FromPath[str]
    ) -> Invoice:
        """One invoice with its lines; 404 for another merchant's."""
        require(principal, "billing:read")
        tenant = await tenant_of_object(request, principal, "invoice", invoice_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            invoice = await invoices.get(tenant, invoice_id)
        return view(invoice, Invoice)

    @post("/{invoice_id:str}/finalize", status_code=200, summary="Finalize an invoice", responses=CONFLICT_RESPONSE)
    async def finalize(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], invoice_id: FromPath[str]
    ) -> Invoice:
        """Number and issue a draft: ``open`` (``paid`` at once when nothing is due)."""
        require(principal, "billing:write")
        tenant = await tenant_of_object(request, principal, "invoice", invoice_id)
        merchant = tenant.merchant
        async with tenant_transaction(merchant.iso_id):
            invoice = await invoices.finalize(
                tenant,
                invoice_id,
                now=await merchant_now(merchant.id, iso_id=merchant.iso_id),
                actor=api_actor(request, principal),
            )
        return view(invoice, Invoice)

    @post("/{invoice_id:str}/pay", status_code=200, summary="Pay an invoice now", responses=CONFLICT_RESPONSE)
    async def pay(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        invoice_id: FromPath[str],
        data: JSONBody[InvoicePay],
    ) -> InvoicePayment:
        """Charge what is due on an open invoice to the customer's default card (or the card named).

        A decline is an answer, not an error: ``payment.outcome`` says ``declined`` and the invoice
        stays open. 503 when the gateway did not answer (retry: the same order is asked again).
        """
        require(principal, "billing:write")
        tenant = await tenant_of_object(request, principal, "invoice", invoice_id)
        merchant = tenant.merchant
        now = await merchant_now(merchant.id, iso_id=merchant.iso_id)
        attempt = await charges.pay_invoice(
            platform_of(request),
            tenant,
            invoice_id,
            payment_method_id=data.payment_method,
            now=now,
            actor=api_actor(request, principal),
        )
        async with tenant_transaction(merchant.iso_id):
            invoice = await invoices.get(tenant, invoice_id)
        return InvoicePayment(invoice=view(invoice, Invoice), payment=view(attempt, PaymentAttempt))

    @post("/{invoice_id:str}/void", status_code=200, summary="Void an invoice", responses=CONFLICT_RESPONSE)
    async def void(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], invoice_id: FromPath[str]
    ) -> Invoice:
        """Cancel an open or uncollectible invoice: nothing is owed on it any more."""
        require(principal, "billing:write")
        tenant = await tenant_of_object(request, principal, "invoice", invoice_id)
        merchant = tenant.merchant
        async with tenant_transaction(merchant.iso_id):
            invoice = await invoices.void(
                tenant,
                invoice_id,
                now=await merchant_now(merchant.id, iso_id=merchant.iso_id),
                actor=api_actor(request, principal),
            )
        return view(invoice, Invoice)

    @post(
        "/{invoice_id:str}/mark-uncollectible",
        status_code=200,
        summary="Mark an invoice uncollectible",
        responses=CONFLICT_RESPONSE,
    )
    async def mark_uncollectible(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], invoice_id: FromPath[str]
    ) -> Invoice:
        """An open invoice the merchant no longer expects to collect (it may still be paid or voided)."""
        require(principal, "billing:write")
        tenant = await tenant_of_object(request, principal, "invoice", invoice_id)
        merchant = tenant.merchant
        async with tenant_transaction(merchant.iso_id):
            invoice = await invoices.mark_uncollectible(
                tenant,
                invoice_id,
                now=await merchant_now(merchant.id, iso_id=merchant.iso_id),
                actor=api_actor(request, principal),
            )
        return view(invoice, Invoice)
