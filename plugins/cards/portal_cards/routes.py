"""The customer's card pages: list, add, update after a failed charge, make default, remove.

Every card id in a path is looked up within the signed-in customer's own cards at this
merchant, so another customer's or another merchant's id answers 404 like a missing one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect

from portal.sdk import (
    N_,
    CustomerView,
    Tenant,
    allow_origins,
    customer_actor,
    customer_of,
    has_prefix,
    optional_customer,
    platform_of,
    render_page,
    session_of,
    tenant_of,
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_cards import service, store
from portal_cards.messages import (
    ERRORS,
    REFUSALS,
    card_required_message,
    duplicate_message,
    error_text,
    expired_default_message,
    limit_advice,
    limit_message,
)
from portal_cards.service import CardActionError, CardNotFoundError
from portal_cards.views import CardView, card_view, today_for

FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
Form = Annotated[dict[str, str], FormBody]
LIST_PATH = "/payment-methods"

NOTICES = {
    "added": N_("%(card)s was added."),
    "added_default": N_("%(card)s was added and is now your default card."),
    "existing_default": N_("%(card)s was already on file and is now your default card."),
    "updated": N_("%(card)s is now your default card. Thank you for updating it."),
    "default": N_("%(card)s is now your default card."),
    "removed": N_("%(card)s was removed."),
}
"""The outcome of the last change (``?done=added``), marked for translation; ``card`` is its description."""

RETRYABLE = frozenset({"remove_refused", "processor"})
"""Removal errors after which the confirmation page offers *Try again*."""


def _card_id(value: str) -> str:
    if not has_prefix(value, "pm"):
        raise NotFoundException()
    return value


def _after_error(path: str, exc: CardActionError, *, with_card: bool = False, **query: str) -> Redirect:
    """Where a refused ``POST`` sends the browser: a ``GET`` of ``path`` naming the error's code."""
    if with_card and exc.card_id:
        query["card"] = exc.card_id
    return Redirect(f"{path}?{urlencode({'error': exc.code, **query})}", status_code=303)


async def _views(
    tenant: Tenant, customer: CustomerView, removed_id: str | None = None
) -> tuple[list[CardView], CardView | None]:
    """The customer's cards on file, and the removed card ``removed_id`` when it is one of theirs."""
    settings = service.settings_of(tenant)
    async with tenant_transaction(tenant.merchant.iso_id):
        cards = await store.cards_on_file(tenant.merchant, customer.id)
        removed = await store.removed_card(tenant.merchant, customer.id, removed_id) if removed_id else None
    today = today_for(tenant.merchant, datetime.now(UTC))
    views = [card_view(card, today, settings.expiring_soon_days) for card in cards]
    return views, card_view(removed, today, settings.expiring_soon_days) if removed else None


@get(LIST_PATH, name="cards_list")
async def list_cards(
    request: Request[Any, Any, Any], done: FromQuery[str] = "", card: FromQuery[str] = "", error: FromQuery[str] = ""
) -> Response[Any]:
    """The customer's cards, with the outcome of the last change when there was one."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    return await _list_page(request, tenant, customer, done=done, card=card, error=error)


async def _list_page(
    request: Request[Any, Any, Any],
    tenant: Tenant,
    customer: CustomerView,
    *,
    done: str = "",
    card: str = "",
    error: str = "",
) -> Response[Any]:
    settings = service.settings_of(tenant)
    removed_id = card if done == "removed" and has_prefix(card, "pm") else None
    views, removed = await _views(tenant, customer, removed_id)
    notice = None
    if done in NOTICES:
        candidates = views if done != "removed" else [removed] if removed else []
        described = next((view.description for view in candidates if view.id == card), None)
        notice = _(NOTICES[done]) % {"card": described or _("Your card")}
    at_limit = len(views) >= settings.max_cards
    can_add = settings.allow_add and not at_limit
    # The error is worded from what is on file now; one that no longer applies is not shown.
    subject = next((view for view in views if view.id == card), None)
    message, title = None, _("Not changed:")
    if error == "limit" and at_limit and settings.allow_add:
        message = limit_message(tenant.merchant, max_cards=settings.max_cards, allow_remove=settings.allow_remove)
        title = _("Card not added:")
    elif error == "duplicate" and subject is not None:
        message, title = duplicate_message(subject.description), _("Card not added:")
    elif error == "expired_default" and subject is not None and subject.expired:
        message = expired_default_message(subject.description, can_add=can_add)
    return render_page(
        request,
        "cards/list.html",
        tenant=tenant,
        title=_("Payment methods"),
        active_nav="cards",
        cards=views,
        notice=notice,
        error=message,
        error_title=title,
        expiring=[view for view in views if view.expiring_soon or view.expired],
        can_add=can_add,
        limit_note=at_limit and settings.allow_add and error != "limit",  # unless the error says it already
        limit_advice=limit_advice(tenant.merchant, allow_remove=settings.allow_remove),
        max_cards=settings.max_cards,
        can_remove=settings.allow_remove,
        gateway_ready=tenant.gateway is not None,
    )


async def _card_form(
    request: Request[Any, Any, Any],
    tenant: Tenant,
    *,
    mode: str,
    error: str | None = None,
    status_code: int = 200,
    make_default: bool = False,
    cards_on_file: int = 0,
    failed_charge: str | None = None,
) -> Response[Any]:
    """The page with the gateway's hosted card fields (``mode`` is ``add`` or ``update``)."""
    settings = service.settings_of(tenant)
    hosted = None
    if not settings.allow_add:
        error, status_code = error_text("add_not_allowed"), 403
    if settings.allow_add:
        try:
            adapter = service.adapter_for(platform_of(request), tenant)
        except CardActionError as exc:
            error, status_code = exc.message, exc.status_code
        else:
            hosted = adapter.hosted_fields(tenant.merchant.brand.color)
            allow_origins(request, hosted.origins)
    return render_page(
        request,
        "cards/add.html",
        tenant=tenant,
        title=_("Update your card") if mode == "update" else _("Add a card"),
        active_nav="cards",
        status_code=status_code,
        mode=mode,
        hosted=hosted,
        error=error,
        make_default=make_default,
        failed_charge=failed_charge,
        at_limit=mode == "update" and cards_on_file >= settings.max_cards,
        action=f"{LIST_PATH}/update" if mode == "update" else LIST_PATH,
    )


def _form_error(tenant: Tenant, code: str, *, at_limit: bool = False) -> str | None:
    """The sentence for ``?error=code`` on the card form; None for a code the form does not show."""
    if code == "limit":  # only the update flow comes here with it (at the limit, no default card to replace)
        settings = service.settings_of(tenant)
        limit = limit_message(tenant.merchant, max_cards=settings.max_cards, allow_remove=settings.allow_remove)
        return limit if at_limit else None
    return error_text(code) if code in ERRORS else None


@get(f"{LIST_PATH}/new", name="cards_new")
async def new_card(
    request: Request[Any, Any, Any], error: FromQuery[str] = "", make_default: FromQuery[str] = ""
) -> Response[Any]:
    """The add-a-card form; at the card limit, the list saying so."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    settings = service.settings_of(tenant)
    if settings.allow_add:
        views, _removed = await _views(tenant, customer)
        if len(views) >= settings.max_cards:
            return Redirect(f"{LIST_PATH}?error=limit", status_code=303)
    return await _card_form(
        request, tenant, mode="add", error=_form_error(tenant, error), make_default=make_default == "on"
    )


@get(f"{LIST_PATH}/update", name="cards_update")
async def update_card(request: Request[Any, Any, Any], error: FromQuery[str] = "") -> Response[Any]:
    """Where an ``update_payment`` link lands: replace the card after a failed charge."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    views, _removed = await _views(tenant, customer)
    at_limit = len(views) >= service.settings_of(tenant).max_cards
    async with tenant_transaction(tenant.merchant.iso_id):  # the hook runs in the tenant's transaction
        reason = await service.update_reason(platform_of(request), tenant, customer.id)
    return await _card_form(
        request,
        tenant,
        mode="update",
        error=_form_error(tenant, error, at_limit=at_limit),
        cards_on_file=len(views),
        failed_charge=reason,
    )


async def _add(request: Request[Any, Any, Any], data: dict[str, str], *, replacing: bool) -> Response[Any]:
    tenant = tenant_of(request)
    customer = customer_of(request)
    session = session_of(request)
    make_default = data.get("make_default") == "on"
    link_id = session.link_id if replacing and session else None
    taken_over = replacing and service.replacement_taken_over(platform_of(request), tenant)
    try:
        added = await service.add_card(
            platform_of(request),
            tenant,
            customer,
            data.get("payment_token", "").strip(),
            make_default=make_default,
            actor=customer_actor(request, customer.id),
            replacing=replacing,
            fulfil_link_id=None if taken_over else link_id,
        )
    except CardActionError as exc:
        mode = "update" if replacing else "add"
        if exc.code in REFUSALS:  # nothing the pages offer: answered as it is
            return await _card_form(request, tenant, mode=mode, error=exc.message, status_code=exc.status_code)
        if replacing:
            return _after_error(f"{LIST_PATH}/update", exc)
        if exc.code in ("limit", "duplicate"):  # the list shows the cards the message is about
            return _after_error(LIST_PATH, exc, with_card=True)
        if make_default:  # the form comes back with the box still ticked
            return _after_error(f"{LIST_PATH}/new", exc, make_default="on")
        return _after_error(f"{LIST_PATH}/new", exc)
    if taken_over:
        target = await service.after_replacement(request, tenant, customer, added.card.id, link_id)
        if target:
            return Redirect(target, status_code=303)
    if replacing:
        done = "updated"
    elif not added.new:
        done = "existing_default"
    else:
        done = "added_default" if make_default else "added"
    return Redirect(f"{LIST_PATH}?done={done}&card={added.card.id}", status_code=303)


@post(LIST_PATH, name="cards_add", status_code=303)
async def add_card(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Put the card behind a hosted-fields payment token on file."""
    return await _add(request, data, replacing=False)


@post(f"{LIST_PATH}/update", name="cards_update_submit", status_code=303)
async def submit_update(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Add the new card as the default and close the update link."""
    return await _add(request, data, replacing=True)


@post(f"{LIST_PATH}/{{card_id:str}}/default", name="cards_make_default", status_code=303)
async def make_default(request: Request[Any, Any, Any], card_id: FromPath[str]) -> Response[Any]:
    """Charge this card by default."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    try:
        card = await service.set_default(
            tenant, customer, _card_id(card_id), actor=customer_actor(request, customer.id)
        )
    except CardNotFoundError as exc:
        raise NotFoundException() from exc
    except CardActionError as exc:
        return _after_error(LIST_PATH, exc, with_card=True)
    return Redirect(f"{LIST_PATH}?done=default&card={card.id}", status_code=303)


async def _confirm_page(
    request: Request[Any, Any, Any],
    tenant: Tenant,
    customer: CustomerView,
    card_id: str,
    *,
    error: str = "",
    refusal: CardActionError | None = None,
) -> Response[Any]:
    views, _removed = await _views(tenant, customer)
    view = next((candidate for candidate in views if candidate.id == card_id), None)
    if view is None:
        raise NotFoundException()
    settings = service.settings_of(tenant)
    message = refusal.message if refusal else None
    if error in RETRYABLE:
        message = error_text(error)
    elif error == "card_required" and len(views) == 1:  # worded from what needs the card now, if anything
        async with tenant_transaction(tenant.merchant.iso_id):  # the hook runs in the tenant's transaction
            reason = await service.card_required_reason(platform_of(request), tenant, customer.id)
        if reason:
            message = card_required_message(reason, tenant.merchant, settings.allow_add, settings.max_cards)
    return render_page(
        request,
        "cards/remove.html",
        tenant=tenant,
        title=_("Remove %(card)s") % {"card": view.description},
        active_nav="cards",
        status_code=refusal.status_code if refusal else 200,
        card=view,
        only_card=len(views) == 1,
        can_add=settings.allow_add and len(views) < settings.max_cards,
        can_replace=settings.allow_add,
        error=message,
        retryable=message is not None and error in RETRYABLE,
    )


@get(f"{LIST_PATH}/{{card_id:str}}/remove", name="cards_remove_confirm")
async def confirm_remove(
    request: Request[Any, Any, Any], card_id: FromPath[str], error: FromQuery[str] = ""
) -> Response[Any]:
    """Ask before removing a card (again after a refusal, saying why)."""
    tenant = tenant_of(request)
    customer = optional_customer(request)
    if customer is None:
        return Redirect("/login", status_code=303)
    return await _confirm_page(request, tenant, customer, _card_id(card_id), error=error)


@post(f"{LIST_PATH}/{{card_id:str}}/remove", name="cards_remove", status_code=303)
async def remove(request: Request[Any, Any, Any], card_id: FromPath[str]) -> Response[Any]:
    """Remove a card (refused for the only card while something needs one)."""
    tenant = tenant_of(request)
    customer = customer_of(request)
    card_id = _card_id(card_id)
    try:
        card = await service.remove_card(
            platform_of(request), tenant, customer, card_id, actor=customer_actor(request, customer.id)
        )
    except CardNotFoundError as exc:
        raise NotFoundException() from exc
    except CardActionError as exc:
        if exc.code in REFUSALS:
            return await _confirm_page(request, tenant, customer, card_id, refusal=exc)
        return _after_error(f"{LIST_PATH}/{card_id}/remove", exc)
    return Redirect(f"{LIST_PATH}?done=removed&card={card.id}", status_code=303)


CARD_ROUTES = [list_cards, new_card, update_card, add_card, submit_update, make_default, confirm_remove, remove]
