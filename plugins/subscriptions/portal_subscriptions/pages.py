"""The list of a customer's subscriptions and the page of one."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from portal.sdk import (
    billing_invoices,
    list_methods,
    optional_customer,
    render_page,
    session_of,
    tenant_of,
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_subscriptions import service, store
from portal_subscriptions.messages import done_notice, invoice_status
from portal_subscriptions.service import SubscriptionNotFoundError
from portal_subscriptions.views import pause_reason_text, subscription_view
from portal_subscriptions.web import (
    BRANDS,
    ITEM,
    LIST_PATH,
    Page,
    formats,
    subscription_id,
)


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
        title=_("Subscriptions"),
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
            sub = await service.owned(tenant, customer.id, subscription_id(sub_id))
        except SubscriptionNotFoundError as exc:
            raise NotFoundException() from exc
        invoices = await billing_invoices.list(tenant, subscription=sub.id, limit=5)
        cards = await list_methods(tenant.merchant.iso_id, tenant.merchant.id, customer.id)
    view = subscription_view(sub, fmt)
    card = next((c for c in cards if c.id == sub.default_payment_method), None) or next(
        (c for c in cards if c.is_default), None
    )
    session = session_of(request)
    notice = done_notice(done, view.name, view.period_end)
    return render_page(
        request,
        "subscriptions/detail.html",
        tenant=tenant,
        title=view.name,
        active_nav="subscriptions",
        sub=view,
        notice=notice,
        return_after=session.return_url if notice and session else None,
        card=_("%(brand)s ending in %(last4)s") % {"brand": BRANDS.get(card.brand) or _("Card"), "last4": card.last4}
        if card
        else None,
        pause_reason=pause_reason_text(sub.pause_reason, settings.pause_reasons) if sub.pause_reason else None,
        invoices=[
            {
                "id": invoice.id,
                "number": invoice.number or _("Draft"),
                "date": fmt.day(invoice.issued_at or invoice.created_at),
                "total": fmt.money(invoice.total, invoice.currency),
                "status": invoice_status(invoice.status),
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
