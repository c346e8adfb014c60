"""The customer's subscription pages: list, detail, pause and resume, cancel and undo, change.

Every action is a form that leads to a review page (a ``GET`` that shows what will happen and
changes nothing), then a ``POST`` that makes the change and redirects (303) to the
subscription's page with ``?done=<what>``. Every subscription id in a path is looked up among the
signed-in customer's own at this merchant, so any other id answers 404 like a missing one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect

from portal.sdk import (
    CustomerView,
    Tenant,
    billing_invoices,
    customer_actor,
    customer_of,
    has_prefix,
    list_methods,
    merchant_now,
    optional_customer,
    render_page,
    session_of,
    tenant_of,
    tenant_transaction,
)
from portal_subscriptions import service, store
from portal_subscriptions.choices import FormError, RefusedError, cancel_choice, pause_choice
from portal_subscriptions.messages import CANCEL_REASON_LABELS, DONE
from portal_subscriptions.service import StaleQuoteError, SubscriptionNotFoundError
from portal_subscriptions.views import Formats, formats_for, next_boundary, periods_after, plan_view, subscription_view

FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
Form = Annotated[dict[str, str], FormBody]
LIST_PATH = "/subscriptions"
ITEM = LIST_PATH + "/{sub_id:str}"
BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover"}

Page = Response[Any]


def _id(value: str) -> str:
    if not has_prefix(value, "sub"):
        raise NotFoundException()
    return value


def formats(request: Request[Any, Any, Any], tenant: Tenant) -> Formats:
    """The merchant's time zone and the customer's locale (the link's, else the merchant's)."""
    session = session_of(request)
    return formats_for(tenant.merchant.timezone, session.locale if session else None, tenant.merchant.locale)


def _query(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {name: str(request.query_params.get(name, "")) for name in request.query_params}


def _refused(request: Request[Any, Any, Any], tenant: Tenant, exc: RefusedError, sub_id: str = "") -> Page:
    return render_page(
        request,
        "subscriptions/refused.html",
        tenant=tenant,
        title="Not available" if exc.status_code == 403 else "Not changed",
        active_nav="subscriptions",
        status_code=exc.status_code,
        message=exc.message,
        sub_id=sub_id,
    )


async def _own(tenant: Tenant, customer: CustomerView, sub_id: str) -> store.StoredSubscription:
    async with tenant_transaction(tenant.merchant.iso_id):
        try:
            return await service.owned(tenant, customer.id, _id(sub_id))
        except SubscriptionNotFoundError as exc:
            raise NotFoundException() from exc


def _done(sub_id: str, what: str) -> Redirect:
    return Redirect(f"{LIST_PATH}/{sub_id}?done={what}", status_code=303)


# --- list and detail -------------------------------------------------------------------------------


@get(LIST_PATH, name="subscriptions_list")
async def list_subscriptions(request: Request[Any, Any, Any]) -> Page:
    """The customer's subscriptions with their status and next charge."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    async with tenant_transaction(tenant.merchant.iso_id):
        subs = await store.subscriptions_of(tenant.merchant, customer.id)
    fmt = formats(request, tenant)
    return render_page(
        request,
        "subscriptions/list.html",
        tenant=tenant,
        title="Subscriptions",
        active_nav="subscriptions",
        subscriptions=[subscription_view(sub, fmt) for sub in subs],
    )


@get(ITEM, name="subscriptions_detail")
async def detail(request: Request[Any, Any, Any], sub_id: FromPath[str], done: FromQuery[str] = "") -> Page:
    """One subscription: price, period, card, recent invoices and the actions allowed."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    settings = service.settings_of(tenant)
    fmt = formats(request, tenant)
    async with tenant_transaction(tenant.merchant.iso_id):
        try:
            sub = await service.owned(tenant, customer.id, _id(sub_id))
        except SubscriptionNotFoundError as exc:
            raise NotFoundException() from exc
        invoices = await billing_invoices.list(tenant, subscription=sub.id, limit=5)
        cards = await list_methods(tenant.merchant.iso_id, tenant.merchant.id, customer.id)
    view = subscription_view(sub, fmt)
    card = next((c for c in cards if c.id == sub.default_payment_method), None) or next(
        (c for c in cards if c.is_default), None
    )
    session = session_of(request)
    notice = DONE[done].format(name=view.name, period_end=view.period_end) if done in DONE else None
    return render_page(
        request,
        "subscriptions/detail.html",
        tenant=tenant,
        title=view.name,
        active_nav="subscriptions",
        sub=view,
        notice=notice,
        return_after=session.return_url if notice and session else None,
        card=f"{BRANDS.get(card.brand, 'Card')} ending in {card.last4}" if card else None,
        invoices=[
            {
                "id": invoice.id,
                "number": invoice.number or "Draft",
                "date": fmt.day(invoice.issued_at or invoice.created_at),
                "total": fmt.money(invoice.total, invoice.currency),
                "status": invoice.status.replace("_", " ").capitalize(),
            }
            for invoice in invoices
            if invoice.status != "draft"
        ],
        invoices_on="invoices" in tenant.enabled_plugins,
        can_pause=settings.allow_pause and view.live and not view.canceling,
        can_resume=settings.allow_pause and view.paused,
        can_cancel=settings.allow_cancel and not view.canceled and not view.canceling,
        can_undo=settings.allow_cancel and view.canceling,
        can_change=(settings.allow_plan_change or settings.allow_quantity_change)
        and not view.canceled
        and sub.status != "unpaid",
    )


# --- pause and resume ------------------------------------------------------------------------------


async def _pause_form(
    request: Request[Any, Any, Any], tenant: Tenant, sub: store.StoredSubscription, values: dict[str, str],
    errors: dict[str, str] | None = None,
) -> Page:  # fmt: skip
    settings = service.settings_of(tenant)
    fmt = formats(request, tenant)
    durations = []
    for value in settings.pause_durations:
        if value == "until_date":
            durations.append(("until_date", "Until a date I choose"))
        else:
            resumes = fmt.day(periods_after(sub, value, fmt.timezone))
            plural = "s" if value != 1 else ""
            durations.append((str(value), f"{value} billing period{plural} (resumes {resumes})"))
    return render_page(
        request,
        "subscriptions/pause.html",
        tenant=tenant,
        title="Pause subscription",
        active_nav="subscriptions",
        status_code=400 if errors else 200,
        sub=subscription_view(sub, fmt),
        reasons=settings.pause_reasons,
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
        return _refused(request, tenant, exc)
    sub = await _own(tenant, customer, sub_id)
    return await _pause_form(request, tenant, sub, _query(request))


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
        return _refused(request, tenant, exc)
    sub = await _own(tenant, customer, sub_id)
    values = _query(request)
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
        title="Confirm the pause",
        active_nav="subscriptions",
        sub=view,
        choice=choice,
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
    sub_id = _id(sub_id)
    try:
        await service.pause(tenant, customer.id, sub_id, data, actor=customer_actor(request, customer.id))
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return _refused(request, tenant, exc, sub_id)
    except FormError as exc:
        sub = await _own(tenant, customer, sub_id)
        return await _pause_form(request, tenant, sub, data, exc.errors)
    return _done(sub_id, "paused")


@post(ITEM + "/resume", name="subscriptions_resume", status_code=303)
async def resume(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """End the pause now."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    sub_id = _id(sub_id)
    try:
        await service.resume(tenant, customer.id, sub_id, actor=customer_actor(request, customer.id))
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return _refused(request, tenant, exc, sub_id)
    return _done(sub_id, "resumed")


# --- cancel and undo -------------------------------------------------------------------------------


async def _cancel_form(
    request: Request[Any, Any, Any], tenant: Tenant, sub: store.StoredSubscription, values: dict[str, str],
    errors: dict[str, str] | None = None,
) -> Page:  # fmt: skip
    settings = service.settings_of(tenant)
    return render_page(
        request,
        "subscriptions/cancel.html",
        tenant=tenant,
        title="Cancel subscription",
        active_nav="subscriptions",
        status_code=400 if errors else 200,
        sub=subscription_view(sub, formats(request, tenant)),
        modes=settings.cancel_modes,
        reasons=[(code, CANCEL_REASON_LABELS[code]) for code in settings.cancel_reasons],
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
        return _refused(request, tenant, exc)
    sub = await _own(tenant, customer, sub_id)
    return await _cancel_form(request, tenant, sub, _query(request))


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
        return _refused(request, tenant, exc)
    sub = await _own(tenant, customer, sub_id)
    values = _query(request)
    try:
        choice = cancel_choice(settings, tenant.merchant, values)
    except RefusedError as exc:
        return _refused(request, tenant, exc, sub.id)
    except FormError as exc:
        return await _cancel_form(request, tenant, sub, values, exc.errors)
    return render_page(
        request,
        "subscriptions/cancel_review.html",
        tenant=tenant,
        title="Confirm the cancellation",
        active_nav="subscriptions",
        sub=subscription_view(sub, formats(request, tenant)),
        choice=choice,
        reason_label=CANCEL_REASON_LABELS.get(choice.reason or "", ""),
    )


@post(ITEM + "/cancel", name="subscriptions_cancel", status_code=303)
async def cancel(request: Request[Any, Any, Any], sub_id: FromPath[str], data: Form) -> Page:
    """Cancel at the period's end or at once."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    sub_id = _id(sub_id)
    try:
        choice = await service.cancel(tenant, customer.id, sub_id, data, actor=customer_actor(request, customer.id))
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return _refused(request, tenant, exc, sub_id)
    except FormError as exc:
        sub = await _own(tenant, customer, sub_id)
        return await _cancel_form(request, tenant, sub, data, exc.errors)
    return _done(sub_id, "cancel_scheduled" if choice.mode == "period_end" else "canceled")


@post(ITEM + "/undo-cancel", name="subscriptions_undo_cancel", status_code=303)
async def undo_cancel(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """Keep a subscription whose cancellation is scheduled."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    sub_id = _id(sub_id)
    try:
        await service.undo_cancel(tenant, customer.id, sub_id, actor=customer_actor(request, customer.id))
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return _refused(request, tenant, exc, sub_id)
    return _done(sub_id, "cancel_undone")


# --- change plan or quantity -----------------------------------------------------------------------


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
        title="Change subscription",
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
        return _refused(request, tenant, exc)
    sub = await _own(tenant, customer, sub_id)
    return await _change_form(request, tenant, sub, _query(request))


@get(ITEM + "/change/review", name="subscriptions_change_review")
async def change_review(request: Request[Any, Any, Any], sub_id: FromPath[str]) -> Page:
    """The proration preview: what the change costs now and from the next charge on."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    values = _query(request)
    try:
        sub, quote = await service.quote_change(tenant, customer.id, _id(sub_id), values)
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return _refused(request, tenant, exc)
    except FormError as exc:
        sub = await _own(tenant, customer, sub_id)
        return await _change_form(request, tenant, sub, values, exc.errors)
    fmt = formats(request, tenant)
    preview = quote.preview
    per = f"{preview.price.interval_count} {preview.price.interval}s" if preview.price.interval_count > 1 else ""
    recurring = preview.price.unit_amount * preview.quantity
    return render_page(
        request,
        "subscriptions/change_review.html",
        tenant=tenant,
        title="Confirm the change",
        active_nav="subscriptions",
        sub=subscription_view(sub, fmt),
        choice=quote.choice,
        lines=[
            {"description": line.description, "amount": fmt.money(line.amount, preview.currency)}
            for line in preview.lines
        ],
        billed_now=quote.billed_now,
        billed_now_text=fmt.money(quote.billed_now, preview.currency),
        billed_later_text=fmt.money(quote.billed_later, preview.currency) if quote.billed_later else None,
        unbilled=bool(preview.lines) and quote.behavior == "none" and not preview.restarts_period,
        recurring=f"{fmt.money(recurring, preview.currency)} / {per or preview.price.interval}",
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
    sub_id = _id(sub_id)
    quoted_at, quoted_amount = _quoted(data)
    try:
        await service.change(
            tenant, customer.id, sub_id, data, quoted_at=quoted_at, quoted_amount=quoted_amount,
            actor=customer_actor(request, customer.id),
        )  # fmt: skip
    except SubscriptionNotFoundError as exc:
        raise NotFoundException() from exc
    except RefusedError as exc:
        return _refused(request, tenant, exc, sub_id)
    except FormError as exc:
        sub = await _own(tenant, customer, sub_id)
        return await _change_form(request, tenant, sub, data, exc.errors)
    except StaleQuoteError:
        sub = await _own(tenant, customer, sub_id)
        return await _change_form(request, tenant, sub, data, stale=True)
    return _done(sub_id, "changed")


SUBSCRIPTION_ROUTES = [
    list_subscriptions,
    detail,
    pause_form,
    pause_review,
    pause,
    resume,
    cancel_form,
    cancel_review,
    cancel,
    undo_cancel,
    change_form,
    change_review,
    change,
]
