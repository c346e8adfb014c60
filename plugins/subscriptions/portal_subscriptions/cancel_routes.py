"""Cancelling a subscription (form, review, confirmation) and undoing a scheduled cancellation."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from portal.sdk import (
    Tenant,
    customer_actor,
    customer_of,
    optional_customer,
    render_page,
    tenant_of,
)
from portal.sdk import gettext as _
from portal_subscriptions import service, store
from portal_subscriptions.choices import FormError, RefusedError, cancel_choice
from portal_subscriptions.messages import cancel_reason_label
from portal_subscriptions.service import SubscriptionNotFoundError
from portal_subscriptions.views import subscription_view
from portal_subscriptions.web import (
    ITEM,
    Form,
    Page,
    done_redirect,
    formats,
    own,
    query_values,
    refused_page,
    subscription_id,
)


async def _cancel_form(
    request: Request[Any, Any, Any], tenant: Tenant, sub: store.StoredSubscription, values: dict[str, str],
    errors: dict[str, str] | None = None,
) -> Page:  # fmt: skip
    settings = service.settings_of(tenant)
    return render_page(
        request,
        "subscriptions/cancel.html",
        tenant=tenant,
        title=_("Cancel subscription"),
        active_nav="subscriptions",
        status_code=400 if errors else 200,
        sub=subscription_view(sub, formats(request, tenant)),
        modes=settings.cancel_modes,
        reasons=[(code, cancel_reason_label(code)) for code in settings.cancel_reasons],
        values=values,
        errors=errors or {},
    )


@get(ITEM + "/cancel", name="subscriptions_cancel_form")
async def cancel_form(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """When and why to cancel."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    try:
        service.require(tenant, "cancel")
    except RefusedError as exc:
        return refused_page(request, tenant, exc)
    sub = await own(tenant, customer, sub_id)
    return await _cancel_form(request, tenant, sub, query_values(request))


@get(ITEM + "/cancel/review", name="subscriptions_cancel_review")
async def cancel_review(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """What cancelling does, before it is confirmed."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    try:
        settings = service.require(tenant, "cancel")
    except RefusedError as exc:
        return refused_page(request, tenant, exc)
    sub = await own(tenant, customer, sub_id)
    values = query_values(request)
    try:
        choice = cancel_choice(settings, tenant.merchant, values)
    except RefusedError as exc:
        return refused_page(request, tenant, exc, sub.id)
    except FormError as exc:
        return await _cancel_form(request, tenant, sub, values, exc.errors)
    return render_page(
        request,
        "subscriptions/cancel_review.html",
        tenant=tenant,
        title=_("Confirm the cancellation"),
        active_nav="subscriptions",
        sub=subscription_view(sub, formats(request, tenant)),
        choice=choice,
        reason_label=cancel_reason_label(choice.reason) if choice.reason else "",
    )


@post(ITEM + "/cancel", name="subscriptions_cancel", status_code=303)
async def cancel(request: Request[Any, Any, Any], sub_id: FromPath[str], data: Form) -> Page:
    """Cancel at the period's end or at once."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    sub_id = subscription_id(sub_id)
    try:
        choice = await service.cancel(tenant, customer.id, sub_id, data, actor=customer_actor(request, customer.id))
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return refused_page(request, tenant, exc, sub_id)
    except FormError as exc:
        sub = await own(tenant, customer, sub_id)
        return await _cancel_form(request, tenant, sub, data, exc.errors)
    return done_redirect(sub_id, "cancel_scheduled" if choice.mode == "period_end" else "canceled")


@post(ITEM + "/undo-cancel", name="subscriptions_undo_cancel", status_code=303)
async def undo_cancel(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """Keep a subscription whose cancellation is scheduled."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    sub_id = subscription_id(sub_id)
    try:
        await service.undo_cancel(tenant, customer.id, sub_id, actor=customer_actor(request, customer.id))
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return refused_page(request, tenant, exc, sub_id)
    return done_redirect(sub_id, "cancel_undone")
