"""Adding, removing and choosing the default card: the customer's rules, core's vault, events.

Core (``portal.payments.methods``) owns the cards on file, the default card and the gateway
vault: it keeps one change of a customer's cards in one transaction holding their lock, calls
the gateway outside the transaction when adding (a vaulted card the portal fails to record, or
does not need because it is already on file, is deleted again) and inside it when removing (a
card the gateway still holds stays on file). This module adds what the cards plugin decides:
its settings (may customers add or remove cards, how many), the ``portal_cards_card_required``
hook, the ``payment_method.*`` events and the update link, all written in core's transaction so
that the card rows, the audit records and the webhook outbox rows commit together or not at all.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request

from portal.sdk import (
    Actor,
    CustomerView,
    GatewayDeclinedError,
    GatewayNotConfiguredError,
    GatewayUnavailableError,
    PaymentGatewayAdapter,
    Tenant,
    emit,
    fulfil_link,
    platform_of,
    tenant_transaction,
)
from portal.sdk import payment_methods as methods
from portal_cards.events import ADDED, DEFAULT_CHANGED, REMOVED, DefaultChangedPayload, PaymentMethodPayload
from portal_cards.messages import decline_code, error_text
from portal_cards.settings import CardsSettings
from portal_cards.store import StoredCard

if TYPE_CHECKING:
    from portal.sdk import Platform

log = logging.getLogger(__name__)

PLUGIN_KEY = "cards"


class CardActionError(Exception):
    """A change the customer asked for cannot be made; the message says why, for them.

    ``code`` names the reason (a key of :data:`portal_cards.messages.ERRORS` or ``REFUSALS``, or
    ``limit``, ``duplicate``, ``expired_default`` or ``card_required``, which the pages word from
    what is on file when they show it); pages redirect to it rather than echo text. ``card_id``
    is the card the code is about, if any.
    """

    def __init__(self, code: str, message: str | None = None, *, status_code: int = 422, card_id: str | None = None):
        message = message if message is not None else error_text(code)
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.card_id = card_id


class CardNotFoundError(LookupError):
    """No card with that id is on file for this customer at this merchant."""


class Added(msgspec.Struct, frozen=True, kw_only=True):
    """What adding a card did: ``card`` is on file, ``new`` unless it already was."""

    card: StoredCard
    new: bool
    """False: the same card (brand, last four digits and expiry, at the same gateway) was on file
    already; it became the default instead of gaining a twin."""


STATUS = {"remove_refused": 502, "unavailable": 503}
"""HTTP status of core's refusal codes other than 409."""

CODES = {"unavailable": "processor"}
"""Core's refusal codes the pages word under another code."""


def settings_of(tenant: Tenant) -> CardsSettings:
    """The merchant's cards settings."""
    settings = tenant.plugin_settings.get(PLUGIN_KEY)
    return settings if isinstance(settings, CardsSettings) else CardsSettings()


def adapter_for(platform: Platform, tenant: Tenant) -> PaymentGatewayAdapter:
    """The merchant's gateway; :class:`CardActionError` when it has none."""
    try:
        return platform.gateways.for_tenant(tenant)
    except GatewayNotConfiguredError as exc:
        raise CardActionError("not_set_up", status_code=503) from exc


def _refusal(exc: methods.PaymentMethodError) -> CardActionError:
    """Core's refusal as the pages word it."""
    return CardActionError(CODES.get(exc.code, exc.code), status_code=STATUS.get(exc.code, 409), card_id=exc.method_id)


def payload(card: StoredCard, *, is_default: bool | None = None) -> PaymentMethodPayload:
    """The event payload describing ``card``."""
    return PaymentMethodPayload(
        id=card.id,
        customer=card.customer_id,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_default=card.is_default if is_default is None else is_default,
        gateway=card.gateway,
    )


async def _emit(tenant: Tenant, event: str, data: object, actor: Actor, customer_id: str, target: str | None) -> None:
    await emit(
        tenant.merchant,
        event,
        data,  # type: ignore[arg-type]
        actor=actor,
        target=("payment_method", target) if target else ("customer", customer_id),
        customer_id=customer_id,
        enabled_plugins=tenant.enabled_plugins,
    )


async def add_card(
    platform: Platform,
    tenant: Tenant,
    customer: CustomerView,
    payment_token: str,
    *,
    make_default: bool,
    actor: Actor,
    replacing: bool = False,
    fulfil_link_id: str | None = None,
) -> Added:
    """Vault the card behind ``payment_token`` and put it on file (:func:`portal.payments.methods.attach`).

    ``replacing`` is the update-after-a-failed-charge flow: the new card becomes the default and
    ``fulfil_link_id`` (the update link) is marked done in the same transaction.

    A card already on file (same gateway, brand, last four digits and expiry) gets no twin: its
    new vault entry is deleted again and the card on file stays as it is, except that it becomes
    the default when ``make_default`` or ``replacing`` asks for that. When nothing would change,
    :class:`CardActionError` says so (``duplicate``, or ``already_default`` when replacing).
    """
    settings = settings_of(tenant)
    if not settings.allow_add:
        raise CardActionError("add_not_allowed", status_code=403)
    if not payment_token or len(payment_token) > 200:
        raise CardActionError("no_details", status_code=400)

    async def record(attached: methods.Attached) -> None:
        """Inside core's transaction: the events of the change, and the update link fulfilled."""
        card = attached.method
        if attached.new:
            await _emit(tenant, ADDED, payload(card), actor, customer.id, card.id)
        if attached.default_changed:
            if replacing:
                reason = "replaced"
            elif not attached.new:
                reason = "chosen"
            else:
                reason = "chosen" if attached.previous_default else "first_card"
            change = DefaultChangedPayload(
                id=card.id, customer=customer.id, previous=attached.previous_default, reason=reason
            )
            await _emit(tenant, DEFAULT_CHANGED, change, actor, customer.id, card.id)
        retired = attached.retired
        if retired is not None:
            await _emit(tenant, REMOVED, payload(retired, is_default=False), actor, customer.id, retired.id)
        if fulfil_link_id:  # an update link is done once its card is replaced
            await fulfil_link(tenant, fulfil_link_id, purpose="update_payment")

    try:
        attached = await methods.attach(
            platform.gateways,
            tenant,
            customer,
            payment_token,
            make_default=make_default,
            replacing=replacing,
            max_methods=settings.max_cards,
            then=record,
        )
    except GatewayNotConfiguredError as exc:
        raise CardActionError("not_set_up", status_code=503) from exc
    except GatewayDeclinedError as exc:
        raise CardActionError(decline_code(exc.response)) from exc
    except GatewayUnavailableError as exc:
        raise CardActionError("processor", status_code=503) from exc
    except methods.PaymentMethodError as exc:
        raise _refusal(exc) from exc
    return Added(card=attached.method, new=attached.new)


async def set_default(tenant: Tenant, customer: CustomerView, card_id: str, *, actor: Actor) -> StoredCard:
    """Make a card the default; nothing happens (and nothing is emitted) when it already is."""
    merchant = tenant.merchant
    try:
        async with tenant_transaction(merchant.iso_id):
            change = await methods.make_default(merchant, customer.id, card_id)
            if change.changed:
                data = DefaultChangedPayload(
                    id=card_id, customer=customer.id, previous=change.previous_default, reason="chosen"
                )
                await _emit(tenant, DEFAULT_CHANGED, data, actor, customer.id, card_id)
    except methods.PaymentMethodNotFoundError as exc:
        raise CardNotFoundError(card_id) from exc
    except methods.PaymentMethodError as exc:
        raise _refusal(exc) from exc
    return change.method


async def card_required_reason(platform: Platform, tenant: Tenant, customer_id: str) -> str | None:
    """What needs the customer to keep a card, from plugins implementing ``portal_cards_card_required``."""
    caller = platform.registry.hook_for("portal_cards_card_required", tenant.enabled_plugins)
    for pending in caller(merchant=tenant.merchant, customer_id=customer_id):  # pluggy drops None results
        reason = await pending
        if reason:
            return str(reason)
    return None


async def update_reason(platform: Platform, tenant: Tenant, customer_id: str) -> str | None:
    """The failed charge the update page names, from plugins implementing ``portal_cards_update_reason``.

    Call inside the merchant's tenant transaction.
    """
    caller = platform.registry.hook_for("portal_cards_update_reason", tenant.enabled_plugins)
    reasons = [await pending for pending in caller(merchant=tenant.merchant, customer_id=customer_id)]
    return next((str(reason) for reason in reasons if reason), None)


def replacement_taken_over(platform: Platform, tenant: Tenant) -> bool:
    """A plugin on for the merchant implements ``portal_cards_card_replaced`` (and so fulfils update links)."""
    caller = platform.registry.hook_for("portal_cards_card_replaced", tenant.enabled_plugins)
    return bool(caller.get_hookimpls())


async def after_replacement(
    request: Request[Any, Any, Any], tenant: Tenant, customer: CustomerView, card_id: str, link_id: str | None
) -> str | None:
    """Where ``portal_cards_card_replaced`` sends the customer after an update; ``None``: the card list.

    When no implementation answers with a path, the update link is fulfilled here.
    """
    platform = platform_of(request)
    caller = platform.registry.hook_for("portal_cards_card_replaced", tenant.enabled_plugins)
    pending = caller(request=request, tenant=tenant, customer=customer, card_id=card_id, link_id=link_id)
    targets = [await each for each in pending]
    target = next((str(path) for path in targets if path), None)
    if target is None and link_id:
        async with tenant_transaction(tenant.merchant.iso_id):
            await fulfil_link(tenant, link_id, purpose="update_payment")
    return target


async def remove_card(
    platform: Platform, tenant: Tenant, customer: CustomerView, card_id: str, *, actor: Actor
) -> StoredCard:
    """Take a card off file and out of the gateway's vault (:func:`portal.payments.methods.remove`).

    The only card stays while something (an active subscription) needs it. When the default
    card goes, the newest remaining card that has not expired becomes the default (none when
    every remaining card has expired). A gateway that refuses or cannot be reached leaves the
    card on file: the transaction rolls back.
    """
    settings = settings_of(tenant)
    merchant = tenant.merchant

    async def record(removed: methods.Removed) -> None:
        """Inside core's transaction: ``payment_method.removed`` and, for the default, the new default."""
        card = removed.method
        await _emit(tenant, REMOVED, payload(card, is_default=False), actor, customer.id, card.id)
        if card.is_default:
            successor = removed.successor.id if removed.successor else None
            change = DefaultChangedPayload(id=successor, customer=customer.id, previous=card.id, reason="removed")
            await _emit(tenant, DEFAULT_CHANGED, change, actor, customer.id, successor)

    try:
        async with tenant_transaction(merchant.iso_id):
            cards = await methods.list_methods(merchant.iso_id, merchant.id, customer.id, lock=True)
            if not any(card.id == card_id for card in cards):
                raise CardNotFoundError(card_id)
            if not settings.allow_remove:
                raise CardActionError("remove_not_allowed", status_code=403, card_id=card_id)
            if len(cards) == 1:
                reason = await card_required_reason(platform, tenant, customer.id)
                if reason:
                    raise CardActionError("card_required", status_code=409, card_id=card_id)
            removed = await methods.remove(platform.gateways, tenant, customer.id, card_id, then=record)
    except methods.PaymentMethodNotFoundError as exc:
        raise CardNotFoundError(card_id) from exc
    except methods.PaymentMethodError as exc:
        raise _refusal(exc) from exc
    return removed.method
