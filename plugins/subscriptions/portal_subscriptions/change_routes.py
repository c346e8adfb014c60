"""Changing a subscription's plan or quantity: form, proration preview, confirmation at the previewed amount."""

from __future__ import annotations

from datetime import datetime
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
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_subscriptions import service, store
from portal_subscriptions.choices import FormError, RefusedError
from portal_subscriptions.service import StaleQuoteError, SubscriptionNotFoundError
from portal_subscriptions.views import per_interval, plan_view, subscription_view
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


async def _change_form(
    request: Request[Any, Any, Any], tenant: Tenant, sub: store.StoredSubscription, values: dict[str, str],
    errors: dict[str, str] | None = None, *, stale: bool = False,
) -> Page:  # fmt: skip
    settings = service.settings_of(tenant)
    fmt = formats(request, tenant)
    plans = []
    if settings.allow_plan_change:
        ids = [sub.price_id, *(p for p in settings.plan_change_prices if p != sub.price_id)]
        async with tenant_transaction(tenant.merchant.iso_id):
            plans = [plan_view(option, fmt) for option in await store.plan_options(tenant.merchant, ids, sub.currency)]
    return render_page(
        request,
        "subscriptions/change.html",
        tenant=tenant,
        title=_("Change subscription"),
        active_nav="subscriptions",
        status_code=400 if errors else 409 if stale else 200,
        sub=subscription_view(sub, fmt),
        current_price=sub.price_id,
        plans=plans,
        quantity_on=settings.allow_quantity_change,
        quantity_max=max(settings.quantity_max, sub.quantity),
        values=values,
        errors=errors or {},
        stale=stale,
    )


@get(ITEM + "/change", name="subscriptions_change_form")
async def change_form(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """Another plan or quantity."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    try:
        service.require(tenant, "change")
    except RefusedError as exc:
        return refused_page(request, tenant, exc)
    sub = await own(tenant, customer, sub_id)
    return await _change_form(request, tenant, sub, query_values(request))


@get(ITEM + "/change/review", name="subscriptions_change_review")
async def change_review(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """The proration preview: what the change costs now and from the next charge on."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    values = query_values(request)
    try:
        sub, quote = await service.quote_change(tenant, customer.id, subscription_id(sub_id), values)
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return refused_page(request, tenant, exc)
    except FormError as exc:
        sub = await own(tenant, customer, sub_id)
        return await _change_form(request, tenant, sub, values, exc.errors)
    fmt = formats(request, tenant)
    preview = quote.preview
    recurring = preview.price.unit_amount * preview.quantity
    interval, count = preview.price.interval, preview.price.interval_count
    view = subscription_view(sub, fmt)
    plan_name = view.name
    if quote.choice.price != sub.price_id:  # the new plan's name (the preview has its price only)
        async with tenant_transaction(tenant.merchant.iso_id):
            options = await store.plan_options(tenant.merchant, [quote.choice.price], sub.currency)
        plan_name = plan_view(options[0], fmt).name if options else plan_name
    return render_page(
        request,
        "subscriptions/change_review.html",
        tenant=tenant,
        title=_("Confirm the change"),
        active_nav="subscriptions",
        sub=view,
        plan_name=plan_name,
        choice=quote.choice,
        lines=[
            {"description": line.description, "amount": fmt.money(line.amount, preview.currency)}
            for line in preview.lines
        ],
        billed_now=quote.billed_now,
        billed_now_text=fmt.money(quote.billed_now, preview.currency),
        billed_later_text=fmt.money(quote.billed_later, preview.currency) if quote.billed_later else None,
        unbilled=bool(preview.lines) and quote.behavior == "none" and not preview.restarts_period,
        new_price=per_interval(fmt.money(preview.price.unit_amount, preview.currency), interval, count),
        recurring=per_interval(fmt.money(recurring, preview.currency), interval, count),
        next_charge_on=fmt.day(preview.period_end),
        next_charge=fmt.money(recurring + sub.pending + quote.billed_later, preview.currency),
        quoted_at=quote.at.isoformat(),
        restarts=preview.restarts_period,
    )


def _quoted(data: dict[str, str]) -> tuple[datetime | None, int | None]:
    """The time and amount of the preview a confirmation carries; ``None`` for what is not one."""
    try:
        at = datetime.fromisoformat(data.get("quoted_at", ""))
    except ValueError:
        at = None
    amount = data.get("quoted_amount", "")
    return (at if at and at.tzinfo else None), (int(amount) if amount.isdigit() and len(amount) < 13 else None)


@post(ITEM + "/change", name="subscriptions_change", status_code=303)
async def change(request: Request[Any, Any, Any], sub_id: FromPath[str], data: Form) -> Page:
    """Make the change at the amount the preview showed."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    sub_id = subscription_id(sub_id)
    quoted_at, quoted_amount = _quoted(data)
    try:
        await service.change(
            tenant, customer.id, sub_id, data, quoted_at=quoted_at, quoted_amount=quoted_amount,
            actor=customer_actor(request, customer.id),
        )  # fmt: skip
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return refused_page(request, tenant, exc, sub_id)
    except FormError as exc:
        sub = await own(tenant, customer, sub_id)
        return await _change_form(request, tenant, sub, data, exc.errors)
    except StaleQuoteError:
        sub = await own(tenant, customer, sub_id)
        return await _change_form(request, tenant, sub, data, stale=True)
    return done_redirect(sub_id, "changed")
