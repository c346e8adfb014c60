"""Paying an invoice: with a card on file (the customer chooses) or a new card (hosted fields).

Each form carries a one-use pay key (:mod:`portal_invoices.service`). After a ``POST`` the
browser is sent (303) to the invoice when it is paid, or back to the pay page with the key,
whose recorded outcome the page words (so no text from a request reaches a page).
"""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from portal.sdk import (
    CustomerView,
    GatewayNotConfiguredError,
    Tenant,
    allow_origins,
    customer_actor,
    customer_of,
    list_methods,
    optional_customer,
    payment_methods,
    platform_of,
    render_page,
    tenant_of,
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_invoices import service, store
from portal_invoices.messages import ERRORS, error_text, refusal_text
from portal_invoices.service import PayOutcome
from portal_invoices.views import card_words, invoice_row
from portal_invoices.web import ITEM, KEY, LIST_PATH, Form, Page, formats, now, own, refused_page, settings_of

PAY = ITEM + "/pay"
PAY_CARD = ITEM + "/pay/card"


async def _outcome(tenant: Tenant, customer: CustomerView, result: str) -> str | None:
    """The words for how the payment of pay key ``result`` ended, when it did not pay."""
    if not result or not service.PAY_KEY.match(result):
        return None
    async with tenant_transaction(tenant.merchant.iso_id):
        found = await store.pay_key(tenant.merchant.id, customer.id, result)
    if found is None or found["outcome"] in (None, "paid", "already_paid"):
        return error_text("in_progress") if found is not None and found["outcome"] is None else None
    if found["outcome"] in ERRORS and found["outcome"] != "card_not_saved":  # no bank's words: in today's language
        return error_text(found["outcome"])
    return str(found["message"] or error_text(found["outcome"]))


def _after(invoice_id: str, key: str, outcome: PayOutcome, back_to: str) -> Redirect:
    if outcome.code in ("paid", "already_paid"):
        return Redirect(f"{LIST_PATH}/{invoice_id}?done={outcome.code}", status_code=303)
    return Redirect(f"{back_to}?result={key}", status_code=303)


async def _page(request: Request[Any, Any, Any], invoice_id: str, result: str, *, new_card: bool) -> Page:
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    settings = settings_of(tenant)
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        invoice = await own(tenant, customer, invoice_id)
        cards = await list_methods(merchant.iso_id, merchant.id, customer.id)
    if not settings.allow_pay:
        return refused_page(request, tenant, refusal_text("pay_not_allowed"))
    if new_card and not settings.allow_pay_with_new_card:
        return refused_page(request, tenant, refusal_text("new_card_not_allowed"))
    fmt = formats(request, tenant)
    row = invoice_row(invoice, fmt, now())
    if not row.payable:
        done = "already_paid" if invoice.status == "paid" else ""
        return Redirect(f"{LIST_PATH}/{invoice.id}" + (f"?done={done}" if done else ""), status_code=303)
    error = await _outcome(tenant, customer, result)
    hosted, status_code = None, 200
    if new_card:
        try:
            hosted = platform_of(request).gateways.for_tenant(tenant).hosted_fields(merchant.brand.color)
        except GatewayNotConfiguredError:
            error, status_code = error_text("not_set_up"), 503
        else:
            allow_origins(request, hosted.origins)
    today = payment_methods.merchant_today(merchant)
    usable = [card for card in cards if payment_methods.expires_on(card) >= today]
    return render_page(
        request,
        "invoices/pay.html",
        tenant=tenant,
        title=_("Pay %(number)s") % {"number": row.number},
        active_nav=KEY,
        status_code=status_code,
        invoice=row,
        cards=[
            {"id": card.id, "words": card_words(card.brand, card.last4), "default": card.is_default} for card in usable
        ],
        default_card=next((card.id for card in usable if card.is_default), usable[0].id if usable else None),
        new_card=new_card,
        hosted=hosted,
        can_use_new_card=settings.allow_pay_with_new_card,
        pay_key=secrets.token_urlsafe(24),
        error=error,
    )


@get(PAY, name="invoices_pay_form")
async def pay_form(request: Request[Any, Any, Any], invoice_id: FromPath[str], result: FromQuery[str] = "") -> Page:
    """Choose a card on file and pay what is due."""
    return await _page(request, invoice_id, result, new_card=False)


@get(PAY_CARD, name="invoices_pay_card_form")
async def pay_card_form(
    request: Request[Any, Any, Any], invoice_id: FromPath[str], result: FromQuery[str] = ""
) -> Page:
    """Pay with a new card, entered in the gateway's hosted fields."""
    return await _page(request, invoice_id, result, new_card=True)


async def _pay(request: Request[Any, Any, Any], invoice_id: str, data: dict[str, str], *, new_card: bool) -> Page:
    tenant = tenant_of(request)
    customer = customer_of(request)
    settings = settings_of(tenant)
    async with tenant_transaction(tenant.merchant.iso_id):
        invoice = await own(tenant, customer, invoice_id)  # 404 before any refusal: not theirs is missing
    if not settings.allow_pay:
        return refused_page(request, tenant, refusal_text("pay_not_allowed"))
    if new_card and not settings.allow_pay_with_new_card:
        return refused_page(request, tenant, refusal_text("new_card_not_allowed"))
    key = data.get("pay_key", "")
    back_to = f"{LIST_PATH}/{invoice.id}/pay" + ("/card" if new_card else "")
    try:
        outcome = await service.pay(
            platform_of(request), tenant, customer, invoice.id, key,
            card_id="" if new_card else data.get("card", "").strip(),
            new_card_token=data.get("payment_token", "").strip() if new_card else None,
            actor=customer_actor(request, customer.id),
        )  # fmt: skip
    except service.PayRefusedError:
        return Redirect(back_to, status_code=303)
    return _after(invoice.id, key, outcome, back_to)


@post(PAY, name="invoices_pay", status_code=303)
async def pay(request: Request[Any, Any, Any], invoice_id: FromPath[str], data: Form) -> Page:
    """Charge the chosen card on file."""
    return await _pay(request, invoice_id, data, new_card=False)


@post(PAY_CARD, name="invoices_pay_card", status_code=303)
async def pay_card(request: Request[Any, Any, Any], invoice_id: FromPath[str], data: Form) -> Page:
    """Put the new card on file and charge it."""
    return await _pay(request, invoice_id, data, new_card=True)
