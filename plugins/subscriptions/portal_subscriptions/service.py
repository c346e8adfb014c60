"""Actions on a customer's subscriptions: the merchant's settings first, then the ledger.

Each action is one transaction: the subscription is looked up among the signed-in customer's own
at this merchant (any other id is :class:`SubscriptionNotFoundError`), the choice is checked, and
the ledger's function makes the change and emits its ``subscription.*`` event (audit record and
webhooks) in the same transaction, with the customer as the actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import msgspec

from portal.sdk import (
    Actor,
    BillingError,
    NotFoundError,
    ProrationBehavior,
    ProrationPreview,
    Tenant,
    billing_changes,
    billing_subscriptions,
    merchant_now,
    preview_change,
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_subscriptions import store
from portal_subscriptions.choices import (
    CancelChoice,
    ChangeChoice,
    FormError,
    PauseChoice,
    RefusedError,
    cancel_choice,
    change_choice,
    pause_choice,
    refuse,
)
from portal_subscriptions.messages import CONFLICTS
from portal_subscriptions.settings import SubscriptionsSettings
from portal_subscriptions.store import StoredSubscription

KEY = "subscriptions"
PREVIEW_VALID = timedelta(minutes=30)
"""How long a change's preview may be confirmed at its amount before it is worked out again."""


class SubscriptionNotFoundError(Exception):
    """Not one of the signed-in customer's subscriptions at this merchant."""


def settings_of(tenant: Tenant) -> SubscriptionsSettings:
    """The merchant's validated settings for this plugin."""
    settings: SubscriptionsSettings = tenant.plugin_settings[KEY]
    return settings


def require(tenant: Tenant, action: str) -> SubscriptionsSettings:
    """The settings, or :class:`RefusedError` (403) when they do not allow ``action``."""
    settings = settings_of(tenant)
    allowed = {
        "pause": settings.allow_pause,
        "cancel": settings.allow_cancel,
        "change": settings.allow_plan_change or settings.allow_quantity_change,
    }[action]
    if not allowed:
        raise refuse(tenant.merchant, action)
    return settings


async def owned(tenant: Tenant, customer_id: str, subscription_id: str) -> StoredSubscription:
    """The customer's subscription (inside the tenant transaction); any other id is not found."""
    found = await store.subscription_of(tenant.merchant, customer_id, subscription_id)
    if found is None:
        raise SubscriptionNotFoundError(subscription_id)
    return found


def _conflict(action: str, exc: BillingError) -> RefusedError:
    return RefusedError(_(CONFLICTS[action]), status_code=409)


async def pause(
    tenant: Tenant, customer_id: str, subscription_id: str, data: Mapping[str, str], *, actor: Actor
) -> PauseChoice:
    """Pause the subscription as chosen on the pause form."""
    settings = require(tenant, "pause")
    async with tenant_transaction(tenant.merchant.iso_id):
        sub = await owned(tenant, customer_id, subscription_id)
        now = await merchant_now(tenant.merchant.id)
        choice = pause_choice(settings, sub, data, now, tenant.merchant.timezone)
        try:
            await billing_subscriptions.pause(
                tenant, sub.id, reason=choice.ledger_reason, resumes_at=choice.resumes_at, now=now, actor=actor
            )
        except BillingError as exc:
            raise _conflict("pause", exc) from exc
    return choice


async def resume(tenant: Tenant, customer_id: str, subscription_id: str, *, actor: Actor) -> None:
    """End a pause now."""
    require(tenant, "pause")
    async with tenant_transaction(tenant.merchant.iso_id):
        sub = await owned(tenant, customer_id, subscription_id)
        now = await merchant_now(tenant.merchant.id)
        try:
            await billing_subscriptions.resume(tenant, sub.id, now=now, actor=actor)
        except BillingError as exc:
            raise _conflict("resume", exc) from exc


async def cancel(
    tenant: Tenant, customer_id: str, subscription_id: str, data: Mapping[str, str], *, actor: Actor
) -> CancelChoice:
    """Cancel at the period's end or at once, as chosen and allowed."""
    settings = require(tenant, "cancel")
    choice = cancel_choice(settings, tenant.merchant, data)
    async with tenant_transaction(tenant.merchant.iso_id):
        sub = await owned(tenant, customer_id, subscription_id)
        now = await merchant_now(tenant.merchant.id)
        try:
            await billing_subscriptions.cancel(
                tenant, sub.id, at_period_end=choice.mode == "period_end", reason=choice.reason,
                comment=choice.comment or None, now=now, actor=actor,
            )  # fmt: skip
        except BillingError as exc:
            raise _conflict("cancel", exc) from exc
    return choice


async def undo_cancel(tenant: Tenant, customer_id: str, subscription_id: str, *, actor: Actor) -> None:
    """Keep a subscription whose cancellation was scheduled for the period's end."""
    require(tenant, "cancel")
    async with tenant_transaction(tenant.merchant.iso_id):
        sub = await owned(tenant, customer_id, subscription_id)
        now = await merchant_now(tenant.merchant.id)
        try:
            await billing_subscriptions.undo_cancel(tenant, sub.id, now=now, actor=actor)
        except BillingError as exc:
            raise _conflict("undo_cancel", exc) from exc


class ChangeQuote(msgspec.Struct, frozen=True, kw_only=True):
    """A change worked out before the customer confirms it."""

    choice: ChangeChoice
    preview: ProrationPreview
    behavior: ProrationBehavior
    at: datetime
    """The time the change is prorated at (the preview's, kept for the confirmation)."""

    @property
    def billed_now(self) -> int:
        """What the change charges at once."""
        if self.preview.restarts_period or self.behavior == "always_invoice":
            return self.preview.amount_due_now
        return 0

    @property
    def billed_later(self) -> int:
        """What the change adds to the next renewal's invoice."""
        if self.preview.restarts_period or self.behavior != "create_prorations":
            return 0
        return sum(line.amount for line in self.preview.lines)


def behavior_for(
    settings: SubscriptionsSettings, sub: StoredSubscription, preview: ProrationPreview
) -> ProrationBehavior:
    """The settings' proration, or none for a downgrade the merchant bills from the next renewal."""
    new_amount = preview.price.unit_amount * preview.quantity
    same_interval = (preview.price.interval, preview.price.interval_count) == (sub.interval, sub.interval_count)
    if settings.downgrades_at_period_end and same_interval and new_amount < sub.amount:
        return "none"
    return settings.proration_behavior


async def _quote(
    tenant: Tenant, settings: SubscriptionsSettings, sub: StoredSubscription, data: Mapping[str, str], at: datetime
) -> ChangeQuote:
    choice = change_choice(settings, tenant.merchant, sub, data)
    try:
        preview = await preview_change(tenant, sub.id, price_id=choice.price, quantity=choice.quantity, at=at)
    except NotFoundError as exc:
        raise FormError({"price": _("That plan is not available. Please choose another.")}) from exc
    except BillingError as exc:
        if exc.code in ("inactive_price", "currency_mismatch"):
            raise FormError({"price": _("That plan is not available. Please choose another.")}) from exc
        raise _conflict("change", exc) from exc
    return ChangeQuote(choice=choice, preview=preview, behavior=behavior_for(settings, sub, preview), at=at)


async def quote_change(
    tenant: Tenant, customer_id: str, subscription_id: str, data: Mapping[str, str]
) -> tuple[StoredSubscription, ChangeQuote]:
    """The preview of a change as of now, for the customer to confirm."""
    settings = require(tenant, "change")
    async with tenant_transaction(tenant.merchant.iso_id):
        sub = await owned(tenant, customer_id, subscription_id)
        now = await merchant_now(tenant.merchant.id)
        return sub, await _quote(tenant, settings, sub, data, now)


class StaleQuoteError(Exception):
    """The preview the customer confirmed no longer holds (too old, or the subscription changed)."""


async def change(
    tenant: Tenant,
    customer_id: str,
    subscription_id: str,
    data: Mapping[str, str],
    *,
    quoted_at: datetime | None,
    quoted_amount: int | None,
    actor: Actor,
) -> ChangeQuote:
    """Make the change the customer confirmed, billed exactly as its preview said.

    The change is prorated at the preview's time (``quoted_at``), so the amount is the one shown;
    a preview missing, older than :data:`PREVIEW_VALID`, or one whose amount no longer comes out the same
    (the subscription changed meanwhile), raises :class:`StaleQuoteError` and changes nothing.
    """
    settings = require(tenant, "change")
    async with tenant_transaction(tenant.merchant.iso_id):
        sub = await owned(tenant, customer_id, subscription_id)
        await billing_subscriptions.get(tenant, sub.id, lock=True)  # held until the change commits
        now = await merchant_now(tenant.merchant.id)
        change_choice(settings, tenant.merchant, sub, data)  # what the settings refuse is refused first
        if quoted_at is None or quoted_amount is None or not now - PREVIEW_VALID <= quoted_at <= now:
            raise StaleQuoteError(subscription_id)
        try:
            quote = await _quote(tenant, settings, sub, data, quoted_at)
        except RefusedError as exc:
            if exc.status_code == 409:  # the period moved on since the preview
                raise StaleQuoteError(subscription_id) from exc
            raise
        if quote.billed_now != quoted_amount:
            raise StaleQuoteError(subscription_id)
        try:
            await billing_changes.change(
                tenant, sub.id, price_id=quote.choice.price, quantity=quote.choice.quantity,
                proration_behavior=quote.behavior, proration_date=quoted_at, now=now, actor=actor,
            )  # fmt: skip
        except BillingError as exc:
            raise _conflict("change", exc) from exc
    return quote
