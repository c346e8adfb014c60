"""``/api/v1/subscriptions``: subscribe customers, change, pause, resume and cancel."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
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
    InvoiceLine,
    ProrationPreview,
    Subscription,
    SubscriptionCancel,
    SubscriptionChangePreview,
    SubscriptionCreate,
    SubscriptionList,
    SubscriptionPause,
    SubscriptionUpdate,
)
from portal.api.customers import api_actor
from portal.api.keys import ApiPrincipal
from portal.api.params import Limit, MerchantParam
from portal.billing import changes, proration, subscriptions
from portal.billing.clock import merchant_now
from portal.billing.models import SubscriptionStatus
from portal.db.engine import tenant_transaction
from portal.tenancy.models import Tenant

CustomerFilter = Annotated[str | None, QueryParameter(description="Only this customer's", max_length=40)]


def _one_of_price_or_quantity(data: SubscriptionUpdate | SubscriptionChangePreview) -> None:
    if data.price is msgspec.UNSET and data.quantity is msgspec.UNSET:
        message = "Give 'price' or 'quantity' (or both)"
        raise ValidationException(detail=f"{message}.", extra=[{"key": "price", "source": "body", "message": message}])


async def _now(tenant: Tenant) -> Any:
    return await merchant_now(tenant.merchant.id, iso_id=tenant.merchant.iso_id)


class SubscriptionController(BillingController):
    """A merchant's subscriptions."""

    path = "/subscriptions"
    tags = ["billing"]

    @post("/", status_code=201, summary="Create a subscription", responses=CONFLICT_RESPONSE)
    async def create(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        data: JSONBody[SubscriptionCreate],
    ) -> Subscription:
        """Subscribe a customer to an active price; without a trial the first period is invoiced (open) at once."""
        require(principal, "billing:write")
        trial_end = body_time("trial_end", data.trial_end)
        tenant = await tenant_of_customer(request, principal, data.customer)
        async with tenant_transaction(tenant.merchant.iso_id):
            subscription = await subscriptions.create(
                tenant,
                customer_id=data.customer,
                price_id=data.price,
                quantity=data.quantity,
                trial_end=trial_end,
                now=await _now(tenant),
                actor=api_actor(request, principal),
            )
        return view(subscription, Subscription)

    @get("/", summary="List subscriptions")
    async def list_subscriptions(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        customer: CustomerFilter = None,
        status: Annotated[SubscriptionStatus | None, QueryParameter(description="Only this status")] = None,
        starting_after: Cursor = None,
        limit: Limit = 20,
        merchant: MerchantParam = None,
    ) -> SubscriptionList:
        """The merchant's subscriptions, newest first; ISO keys name the merchant or a customer."""
        require(principal, "billing:read")
        tenant = await listing_tenant(request, principal, customer=customer, merchant=merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            items, has_more = await paged(
                lambda size, after: subscriptions.list(
                    tenant, customer=customer, status=status, limit=size, starting_after=after
                ),
                limit,
                starting_after,
            )
        return SubscriptionList(data=[view(item, Subscription) for item in items], has_more=has_more)

    @get("/{subscription_id:str}", summary="Retrieve a subscription")
    async def retrieve(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], subscription_id: FromPath[str]
    ) -> Subscription:
        """One subscription; 404 for another merchant's."""
        require(principal, "billing:read")
        tenant = await tenant_of_object(request, principal, "subscription", subscription_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            subscription = await subscriptions.get(tenant, subscription_id)
        return view(subscription, Subscription)

    @patch("/{subscription_id:str}", summary="Change a subscription's price or quantity", responses=CONFLICT_RESPONSE)
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        subscription_id: FromPath[str],
        data: JSONBody[SubscriptionUpdate],
    ) -> Subscription:
        """Move to another price and/or quantity, prorated as ``proration_behavior`` says."""
        require(principal, "billing:write")
        _one_of_price_or_quantity(data)
        tenant = await tenant_of_object(request, principal, "subscription", subscription_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            subscription = await changes.change(
                tenant,
                subscription_id,
                price_id=None if data.price is msgspec.UNSET else data.price,
                quantity=None if data.quantity is msgspec.UNSET else data.quantity,
                proration_behavior=data.proration_behavior,
                now=await _now(tenant),
                actor=api_actor(request, principal),
            )
        return view(subscription, Subscription)

    @post(
        "/{subscription_id:str}/preview-change",
        status_code=200,
        summary="Preview a change's prorations",
        responses=CONFLICT_RESPONSE,
    )
    async def preview(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        subscription_id: FromPath[str],
        data: JSONBody[SubscriptionChangePreview],
    ) -> ProrationPreview:
        """The lines and the amount due now that changing the price or quantity now would bill; changes nothing."""
        require(principal, "billing:read")
        _one_of_price_or_quantity(data)
        tenant = await tenant_of_object(request, principal, "subscription", subscription_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            subscription = await subscriptions.get(tenant, subscription_id)
            subscriptions.check_transition(subscription, "change")
            preview = await proration.preview_change(
                tenant,
                subscription_id,
                price_id=None if data.price is msgspec.UNSET else data.price,
                quantity=None if data.quantity is msgspec.UNSET else data.quantity,
                at=await _now(tenant),
            )
        return ProrationPreview(
            subscription=subscription_id,
            lines=[msgspec.convert(line, InvoiceLine, from_attributes=True) for line in preview.lines],
            amount_due_now=preview.amount_due_now,
            currency=preview.currency,
        )

    @post("/{subscription_id:str}/pause", status_code=200, summary="Pause a subscription", responses=CONFLICT_RESPONSE)
    async def pause(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        subscription_id: FromPath[str],
        data: JSONBody[SubscriptionPause],
    ) -> Subscription:
        """Stop renewals until resumed, or until ``resumes_at``."""
        require(principal, "billing:write")
        resumes_at = body_time("resumes_at", data.resumes_at)
        tenant = await tenant_of_object(request, principal, "subscription", subscription_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            subscription = await subscriptions.pause(
                tenant,
                subscription_id,
                reason=data.reason,
                resumes_at=resumes_at,
                now=await _now(tenant),
                actor=api_actor(request, principal),
            )
        return view(subscription, Subscription)

    @post(
        "/{subscription_id:str}/resume", status_code=200, summary="Resume a subscription", responses=CONFLICT_RESPONSE
    )
    async def resume(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], subscription_id: FromPath[str]
    ) -> Subscription:
        """End a pause: active again; the next renewal bills."""
        require(principal, "billing:write")
        tenant = await tenant_of_object(request, principal, "subscription", subscription_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            subscription = await subscriptions.resume(
                tenant, subscription_id, now=await _now(tenant), actor=api_actor(request, principal)
            )
        return view(subscription, Subscription)

    @post(
        "/{subscription_id:str}/cancel", status_code=200, summary="Cancel a subscription", responses=CONFLICT_RESPONSE
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        subscription_id: FromPath[str],
        data: JSONBody[SubscriptionCancel],
    ) -> Subscription:
        """End now, or (``at_period_end``) at the end of the current period."""
        require(principal, "billing:write")
        tenant = await tenant_of_object(request, principal, "subscription", subscription_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            subscription = await subscriptions.cancel(
                tenant,
                subscription_id,
                at_period_end=data.at_period_end,
                reason=data.reason,
                comment=data.comment,
                now=await _now(tenant),
                actor=api_actor(request, principal),
            )
        return view(subscription, Subscription)

    @post(
        "/{subscription_id:str}/undo-cancel",
        status_code=200,
        summary="Undo a scheduled cancellation",
        responses=CONFLICT_RESPONSE,
    )
    async def undo_cancel(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], subscription_id: FromPath[str]
    ) -> Subscription:
        """Keep a subscription set to end at period end; 409 when no cancellation is scheduled."""
        require(principal, "billing:write")
        tenant = await tenant_of_object(request, principal, "subscription", subscription_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            subscription = await subscriptions.undo_cancel(
                tenant, subscription_id, now=await _now(tenant), actor=api_actor(request, principal)
            )
        return view(subscription, Subscription)
