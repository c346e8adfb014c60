"""Adding, removing and choosing the default card: gateway call, database write and events.

Each change is one tenant transaction holding the customer's card lock: the card rows, the
audit records and the webhook outbox rows commit together or not at all. The gateway is called
outside the transaction when adding (a vaulted card the portal fails to record, or does not
need because it is already on file, is deleted again), and inside it when removing (a card the
gateway still holds stays on file).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from portal.access.links import fulfil_link
from portal.db.engine import tenant_transaction
from portal.events.bus import Actor, emit
from portal.ids import new_id
from portal.payments.choice import GatewayNotConfiguredError
from portal.payments.gateway import (
    Card,
    GatewayDeclinedError,
    GatewayUnavailableError,
    PaymentGatewayAdapter,
    VaultCustomer,
    VaultEntry,
)
from portal.tenancy.models import CustomerView, Tenant
from portal_cards import store
from portal_cards.events import ADDED, DEFAULT_CHANGED, REMOVED, DefaultChangedPayload, PaymentMethodPayload
from portal_cards.messages import ERRORS, REFUSALS, decline_code
from portal_cards.settings import CardsSettings
from portal_cards.store import StoredCard
from portal_cards.views import expiry_day, today_for

if TYPE_CHECKING:
    from portal.platform import Platform

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
        message = message if message is not None else (ERRORS | REFUSALS).get(code, code)
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


GATEWAY_BUDGET = 15.0
"""Seconds a gateway call may take while a database transaction (and its connection) waits on it."""


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
    """Vault the card behind ``payment_token`` and put it on file.

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
    adapter = adapter_for(platform, tenant)
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        on_file = await store.cards_on_file(merchant.id, customer.id)
    if len(on_file) >= settings.max_cards and not replacing:  # a replacement may take its card's place
        raise _full()
    same_gateway = [card for card in on_file if card.gateway == adapter.key]
    vault_id = max(same_gateway, key=lambda card: card.created_at).vault_id if same_gateway else None
    card_id = new_id("pm")
    try:
        entry = await adapter.vault_add(
            payment_token=payment_token,
            vault_id=vault_id,
            billing_id=card_id,
            customer=VaultCustomer(customer_id=customer.id, email=customer.email, name=customer.name),
        )
    except GatewayDeclinedError as exc:
        _log_refusal(merchant.slug, "add", exc)
        raise CardActionError(decline_code(exc.response)) from exc
    except GatewayUnavailableError as exc:
        log.warning("gateway unavailable for %s: %s", merchant.slug, exc)
        raise CardActionError("processor", status_code=503) from exc
    existing: StoredCard | None = None
    try:
        async with tenant_transaction(merchant.iso_id):
            await store.lock_customer(merchant.id, customer.id)
            cards = await store.cards_on_file(merchant.id, customer.id)
            existing = _same_card(cards, adapter.key, entry.card)
            if existing is not None:  # no twin: the card on file stays, at most it becomes the default
                card = await _choose_existing(
                    tenant, customer, existing, cards, make_default=make_default, replacing=replacing, actor=actor
                )
            else:
                if vault_id is not None and not any(other.vault_id == entry.vault_id for other in cards):
                    # The vault record this card was added to lost its last card meanwhile, and removing
                    # that card may have deleted the record: nothing on file vouches for it any more.
                    # (A record the gateway joined on its own, with no card on file, is fine: an undo
                    # deletes a whole record only when no card on file uses it.)
                    raise CardActionError("try_again", status_code=409)
                previous = next((other for other in cards if other.is_default), None)
                retired = None
                if len(cards) >= settings.max_cards:
                    if not (replacing and previous is not None):
                        raise _full()
                    retired = previous  # the failing card makes room for its replacement
                is_default = make_default or replacing or previous is None
                card = StoredCard(
                    id=card_id,
                    customer_id=customer.id,
                    gateway=adapter.key,
                    vault_id=entry.vault_id,
                    billing_id=entry.billing_id,
                    brand=entry.card.brand,
                    last4=entry.card.last4,
                    exp_month=entry.card.exp_month,
                    exp_year=entry.card.exp_year,
                    is_default=is_default,
                    created_at=datetime.now(UTC),
                )
                if is_default:
                    await store.clear_default(merchant.id, customer.id)
                await store.insert_card(merchant.iso_id, merchant.id, card)
                await _emit(tenant, ADDED, payload(card), actor, customer.id, card.id)
                if is_default:
                    reason = "replaced" if replacing else ("chosen" if previous else "first_card")
                    change = DefaultChangedPayload(
                        id=card.id, customer=customer.id, previous=previous.id if previous else None, reason=reason
                    )
                    await _emit(tenant, DEFAULT_CHANGED, change, actor, customer.id, card.id)
                if retired is not None:
                    await store.mark_removed(merchant.id, customer.id, retired.id)
                    await _emit(tenant, REMOVED, payload(retired, is_default=False), actor, customer.id, retired.id)
                    others = [other for other in cards if other.id != retired.id] + [card]
                    await _delete_from_vault(platform, tenant, retired, others)
            if fulfil_link_id:  # an update link is done once its card is replaced
                await fulfil_link(tenant, fulfil_link_id, purpose="update_payment")
    except BaseException:
        await _undo_vault_add(adapter, tenant, customer.id, entry)
        raise
    if existing is not None:  # the card was on file already: the vault entry just made is not needed
        await _undo_vault_add(adapter, tenant, customer.id, entry)
    return Added(card=card, new=existing is None)


def _same_card(cards: list[StoredCard], gateway: str, new: Card) -> StoredCard | None:
    """The card on file that ``new`` duplicates: same gateway, brand, last four digits and expiry.

    Gateways report no card fingerprint; these are also all a page shows to tell cards apart.
    """
    key = (gateway, new.brand, new.last4, new.exp_month, new.exp_year)
    return next(
        (card for card in cards if (card.gateway, card.brand, card.last4, card.exp_month, card.exp_year) == key), None
    )


async def _choose_existing(
    tenant: Tenant,
    customer: CustomerView,
    card: StoredCard,
    cards: list[StoredCard],
    *,
    make_default: bool,
    replacing: bool,
    actor: Actor,
) -> StoredCard:
    """Make the card on file the default when asked to; refuse when that would change nothing."""
    if card.is_default or not (make_default or replacing):
        if replacing:
            raise CardActionError("already_default", status_code=409, card_id=card.id)
        raise CardActionError("duplicate", status_code=409, card_id=card.id)
    return await _make_default(tenant, customer, card, cards, "replaced" if replacing else "chosen", actor)


async def _make_default(
    tenant: Tenant, customer: CustomerView, card: StoredCard, cards: list[StoredCard], reason: str, actor: Actor
) -> StoredCard:
    """Make ``card`` the default and emit ``payment_method.default_changed`` (inside the caller's transaction)."""
    previous = next((other for other in cards if other.is_default), None)
    await store.make_default(tenant.merchant.id, customer.id, card.id)
    change = DefaultChangedPayload(
        id=card.id, customer=customer.id, previous=previous.id if previous else None, reason=reason
    )
    await _emit(tenant, DEFAULT_CHANGED, change, actor, customer.id, card.id)
    return msgspec.structs.replace(card, is_default=True)


def _full() -> CardActionError:
    return CardActionError("limit", status_code=409)


def _log_refusal(merchant_slug: str, action: str, exc: GatewayDeclinedError) -> None:
    """Card declines are routine (INFO); gateway-side errors need the merchant's attention (WARNING)."""
    response = exc.response
    level = logging.INFO if response.outcome == "declined" else logging.WARNING
    log.log(level, "gateway refused to %s a card for %s: %s %s", action, merchant_slug, response.response_code,
            response.response_text)  # fmt: skip


async def _undo_vault_add(adapter: PaymentGatewayAdapter, tenant: Tenant, customer_id: str, entry: VaultEntry) -> None:
    """Take a card the portal did not record back out of the vault (best effort, logged).

    The whole vault record goes only when this add created it and no card on file uses it.
    """
    merchant = tenant.merchant
    try:
        async with tenant_transaction(merchant.iso_id):
            await store.lock_customer(merchant.id, customer_id)
            cards = await store.cards_on_file(merchant.id, customer_id)
        in_use = any(card.vault_id == entry.vault_id and card.gateway == adapter.key for card in cards)
        async with asyncio.timeout(GATEWAY_BUDGET):
            await adapter.vault_delete(
                vault_id=entry.vault_id, billing_id=entry.billing_id, last_in_vault=entry.new_vault and not in_use
            )
    except Exception:
        log.warning("card %s stays in the %s vault of %s unrecorded", entry.billing_id, adapter.key, merchant.slug)


async def _delete_from_vault(platform: Platform, tenant: Tenant, card: StoredCard, remaining: list[StoredCard]) -> None:
    """Delete a card at the gateway inside the caller's transaction; refusals roll the change back."""
    if card.gateway != _gateway_key(tenant):
        log.info("card %s of %s was vaulted at %s, no longer the merchant's gateway", card.id, tenant.merchant.slug,
                 card.gateway)  # fmt: skip
        return
    adapter = adapter_for(platform, tenant)
    last_in_vault = not any(other.vault_id == card.vault_id for other in remaining)
    try:
        async with asyncio.timeout(GATEWAY_BUDGET):
            await adapter.vault_delete(vault_id=card.vault_id, billing_id=card.billing_id, last_in_vault=last_in_vault)
    except GatewayDeclinedError as exc:
        _log_refusal(tenant.merchant.slug, "delete", exc)
        raise CardActionError("remove_refused", status_code=502, card_id=card.id) from exc
    except (GatewayUnavailableError, TimeoutError) as exc:
        log.warning("gateway unavailable for %s while deleting %s: %s", tenant.merchant.slug, card.id, exc)
        raise CardActionError("processor", status_code=503, card_id=card.id) from exc


def _find(cards: list[StoredCard], card_id: str) -> StoredCard:
    for card in cards:
        if card.id == card_id:
            return card
    raise CardNotFoundError(card_id)


async def set_default(tenant: Tenant, customer: CustomerView, card_id: str, *, actor: Actor) -> StoredCard:
    """Make a card the default; nothing happens (and nothing is emitted) when it already is."""
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        await store.lock_customer(merchant.id, customer.id)
        cards = await store.cards_on_file(merchant.id, customer.id)
        card = _find(cards, card_id)
        if card.is_default:
            return card
        if expiry_day(card) < today_for(merchant, datetime.now(UTC)):
            raise CardActionError("expired_default", status_code=409, card_id=card.id)
        await _make_default(tenant, customer, card, cards, "chosen", actor)
    return card


async def card_required_reason(platform: Platform, tenant: Tenant, customer_id: str) -> str | None:
    """What needs the customer to keep a card, from plugins implementing ``portal_cards_card_required``."""
    caller = platform.registry.hook_for("portal_cards_card_required", tenant.enabled_plugins)
    for pending in caller(merchant=tenant.merchant, customer_id=customer_id):  # pluggy drops None results
        reason = await pending
        if reason:
            return str(reason)
    return None


async def remove_card(
    platform: Platform, tenant: Tenant, customer: CustomerView, card_id: str, *, actor: Actor
) -> StoredCard:
    """Take a card off file and out of the gateway's vault.

    The only card stays while something (an active subscription) needs it. When the default
    card goes, the newest remaining card that has not expired becomes the default (none when
    every remaining card has expired). A gateway that refuses or cannot be reached leaves the
    card on file: the transaction rolls back.
    """
    settings = settings_of(tenant)
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        await store.lock_customer(merchant.id, customer.id)
        cards = await store.cards_on_file(merchant.id, customer.id)
        card = _find(cards, card_id)
        if not settings.allow_remove:
            raise CardActionError("remove_not_allowed", status_code=403, card_id=card.id)
        others = [other for other in cards if other.id != card.id]
        if not others:
            reason = await card_required_reason(platform, tenant, customer.id)
            if reason:
                raise CardActionError("card_required", status_code=409, card_id=card.id)
        await store.mark_removed(merchant.id, customer.id, card.id)
        await _emit(tenant, REMOVED, payload(card, is_default=False), actor, customer.id, card.id)
        if card.is_default:
            today = today_for(merchant, datetime.now(UTC))
            usable = [other for other in others if expiry_day(other) >= today]
            successor = max(usable, key=lambda other: (other.created_at, other.id)) if usable else None
            if successor is not None:
                await store.make_default(merchant.id, customer.id, successor.id)
            change = DefaultChangedPayload(
                id=successor.id if successor else None, customer=customer.id, previous=card.id, reason="removed"
            )
            await _emit(tenant, DEFAULT_CHANGED, change, actor, customer.id, successor.id if successor else None)
        await _delete_from_vault(platform, tenant, card, others)
    return card


def _gateway_key(tenant: Tenant) -> str | None:
    choice = tenant.gateway
    return getattr(choice, "key", None)
