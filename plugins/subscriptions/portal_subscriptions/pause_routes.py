"""Pausing a subscription (form, review, confirmation) and resuming it."""

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
    merchant_now,
    ngettext,
    optional_customer,
    render_page,
    tenant_of,
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_subscriptions import service, store
from portal_subscriptions.choices import FormError, RefusedError, pause_choice
from portal_subscriptions.service import SubscriptionNotFoundError
from portal_subscriptions.views import next_boundary, pause_reason_text, periods_after, subscription_view
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


async def _pause_form(
    request: Request[Any, Any, Any], tenant: Tenant, sub: store.StoredSubscription, values: dict[str, str],
    errors: dict[str, str] | None = None,
) -> Page:  # fmt: skip
    settings = service.settings_of(tenant)
    fmt = formats(request, tenant)
    durations = []
    for value in settings.pause_durations:
        if value == "until_date":
            durations.append(("until_date", _("Until a date I choose")))
        else:
            resumes = fmt.day(periods_after(sub, value, fmt.timezone))
            label = ngettext(
                "%(count)d billing period (resumes %(day)s)", "%(count)d billing periods (resumes %(day)s)", value
            )
            durations.append((str(value), label % {"count": value, "day": resumes}))
    return render_page(
        request,
        "subscriptions/pause.html",
        tenant=tenant,
        title=_("Pause subscription"),
        active_nav="subscriptions",
        status_code=400 if errors else 200,
        sub=subscription_view(sub, fmt),
        reasons=[(reason, pause_reason_text(reason, settings.pause_reasons)) for reason in settings.pause_reasons],
        durations=durations,
        values=values,
        errors=errors or {},
    )


@get(ITEM + "/pause", name="subscriptions_pause_form")
async def pause_form(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """Why and how long to pause."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    try:
        service.require(tenant, "pause")
    except RefusedError as exc:
        return refused_page(request, tenant, exc)
    sub = await own(tenant, customer, sub_id)
    return await _pause_form(request, tenant, sub, query_values(request))


@get(ITEM + "/pause/review", name="subscriptions_pause_review")
async def pause_review(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """What the pause does, before it is confirmed."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    try:
        settings = service.require(tenant, "pause")
    except RefusedError as exc:
        return refused_page(request, tenant, exc)
    sub = await own(tenant, customer, sub_id)
    values = query_values(request)
    async with tenant_transaction(tenant.merchant.iso_id):
        now = await merchant_now(tenant.merchant.id)
    try:
        choice = pause_choice(settings, sub, values, now, tenant.merchant.timezone)
    except FormError as exc:
        return await _pause_form(request, tenant, sub, values, exc.errors)
    fmt = formats(request, tenant)
    view = subscription_view(sub, fmt)
    charge_on = next_boundary(sub, choice.resumes_at, fmt.timezone)
    return render_page(
        request,
        "subscriptions/pause_review.html",
        tenant=tenant,
        title=_("Confirm the pause"),
        active_nav="subscriptions",
        sub=view,
        choice=choice,
        reason_label=pause_reason_text(choice.reason, settings.pause_reasons),
        resumes_on=fmt.day(choice.resumes_at),
        charge_on=fmt.day(charge_on),
        charge_amount=fmt.money(sub.amount + sub.pending, sub.currency),
        skipped=view.next_charge_date if view.live else None,
    )


@post(ITEM + "/pause", name="subscriptions_pause", status_code=303)
async def pause(request: Request[Any, Any, Any], sub_id: FromPath[str], data: Form) -> Page:
    """Pause the subscription."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    sub_id = subscription_id(sub_id)
    try:
        await service.pause(tenant, customer.id, sub_id, data, actor=customer_actor(request, customer.id))
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return refused_page(request, tenant, exc, sub_id)
    except FormError as exc:
        sub = await own(tenant, customer, sub_id)
        return await _pause_form(request, tenant, sub, data, exc.errors)
    return done_redirect(sub_id, "paused")


@post(ITEM + "/resume", name="subscriptions_resume", status_code=303)
async def resume(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """End the pause now."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    sub_id = subscription_id(sub_id)
    try:
        await service.resume(tenant, customer.id, sub_id, actor=customer_actor(request, customer.id))
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return refused_page(request, tenant, exc, sub_id)
    return done_redirect(sub_id, "resumed")
