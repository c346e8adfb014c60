"""Paying an invoice: one pay key per attempt, a card on file or a new one, then the ledger.

The pay form carries a fresh random key. The first request with a key takes it (a row in
``invoices_pay_key``, committed before the gateway is called); another request with the same
key (a double click, a resent form) charges nothing and shows how the first one ended. Two
tabs with two keys are kept apart by the ledger itself
(``portal.sdk.billing_charges.pay_invoice``): it locks the invoice, gives each attempt an order
id the gateway never charges twice, and refuses to pay an invoice that is paid already.
"""

from __future__ import annotations

import logging
import re

import msgspec

from portal.sdk import (
    Actor,
    BillingError,
    CustomerView,
    GatewayDeclinedError,
    GatewayNotConfiguredError,
    GatewayUnavailableError,
    Platform,
    Tenant,
    billing_charges,
    charge_ready,
    list_methods,
    merchant_now,
    payment_methods,
    tenant_transaction,
)
from portal_invoices import store
from portal_invoices.messages import ERRORS, decline_message, error_text, with_bank_words
from portal_invoices.views import payable
from portal_invoices.web import own

log = logging.getLogger(__name__)

PAY_KEY = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


class PayOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a pay request ended: ``paid``, ``already_paid``, ``declined`` or an error code of :data:`ERRORS`."""

    code: str
    message: str = ""
    attempt_id: str | None = None


class PayRefusedError(Exception):
    """A pay request refused before anything was charged (the form's input is wrong)."""

    def __init__(self, code: str) -> None:
        super().__init__(ERRORS.get(code, code))
        self.code = code
        self.message = error_text(code) or code


async def _started(tenant: Tenant, customer: CustomerView, invoice_id: str, key: str) -> PayOutcome | None:
    """Take the pay key for this invoice; the earlier outcome when the key was taken already."""
    if not PAY_KEY.match(key):
        raise PayRefusedError("no_details")
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        invoice = await own(tenant, customer, invoice_id)
        if await store.claim_pay_key(merchant.iso_id, merchant.id, customer.id, invoice.id, key):
            if not payable(invoice.status, invoice.amount_due):
                code = "already_paid" if invoice.status == "paid" else "nothing_due"
                await store.settle_pay_key(merchant.id, key, None, code, error_text(code))
                return PayOutcome(code=code, message=error_text(code))
            return None
        earlier = await store.pay_key(merchant.id, customer.id, key)
    if earlier is None or earlier["invoice_id"] != invoice.id:
        raise PayRefusedError("no_details")
    if earlier["outcome"] is None:
        return PayOutcome(code="in_progress", message=error_text("in_progress"))
    return PayOutcome(code=earlier["outcome"], message=earlier["message"] or "", attempt_id=earlier["attempt_id"])


async def _settle(tenant: Tenant, key: str, outcome: PayOutcome) -> PayOutcome:
    async with tenant_transaction(tenant.merchant.iso_id):
        await store.settle_pay_key(tenant.merchant.id, key, outcome.attempt_id, outcome.code, outcome.message)
    return outcome


async def _card_id(tenant: Tenant, customer: CustomerView, wanted: str) -> str:
    """The card on file ``wanted`` (or the default one when empty), usable today."""
    merchant = tenant.merchant
    if not wanted:
        method = await charge_ready(tenant, customer.id)
        if method is None:
            raise PayRefusedError("no_card")
        return method.id
    cards = await list_methods(merchant.iso_id, merchant.id, customer.id)
    if not any(card.id == wanted for card in cards):
        raise PayRefusedError("no_card")
    ready = await charge_ready(tenant, customer.id)
    if ready is not None and ready.id == wanted:
        return wanted
    expired = {card.id for card in cards if payment_methods.expires_on(card) < payment_methods.merchant_today(merchant)}
    if wanted in expired:
        raise PayRefusedError("expired")
    return wanted


async def _new_card(platform: Platform, tenant: Tenant, customer: CustomerView, token: str) -> str | PayOutcome:
    """Put the card behind a hosted-fields token on file (not as the default); its id, or why not."""
    if not token or len(token) > 200:
        return PayOutcome(code="no_details", message=error_text("no_details"))
    try:
        attached = await payment_methods.attach(platform.gateways, tenant, customer, token, make_default=False)
    except payment_methods.PaymentMethodError as exc:
        if exc.code == "duplicate" and exc.method_id:  # that card is on file already: pay with it
            return exc.method_id
        return PayOutcome(code="card_not_saved", message=error_text("card_not_saved"))
    except GatewayDeclinedError as exc:
        text = with_bank_words(error_text("card_not_saved"), exc.response.response_text)
        return PayOutcome(code="card_not_saved", message=text)
    except GatewayNotConfiguredError:
        return PayOutcome(code="not_set_up", message=error_text("not_set_up"))
    except (GatewayUnavailableError, TimeoutError, OSError):
        return PayOutcome(code="unavailable", message=error_text("unavailable"))
    return attached.method.id


async def pay(
    platform: Platform,
    tenant: Tenant,
    customer: CustomerView,
    invoice_id: str,
    key: str,
    *,
    card_id: str = "",
    new_card_token: str | None = None,
    actor: Actor,
) -> PayOutcome:
    """Pay what is due on the customer's invoice, once per ``key``; raises 404 for an invoice not theirs."""
    earlier = await _started(tenant, customer, invoice_id, key)
    if earlier is not None:
        return earlier
    try:
        if new_card_token is not None:
            found = await _new_card(platform, tenant, customer, new_card_token)
            if isinstance(found, PayOutcome):
                return await _settle(tenant, key, found)
            method_id = found
        else:
            method_id = await _card_id(tenant, customer, card_id)
    except PayRefusedError as exc:
        return await _settle(tenant, key, PayOutcome(code=exc.code, message=exc.message))
    return await _settle(tenant, key, await _charge(platform, tenant, invoice_id, method_id, actor))


async def _charge(platform: Platform, tenant: Tenant, invoice_id: str, method_id: str, actor: Actor) -> PayOutcome:
    merchant = tenant.merchant
    now = await merchant_now(merchant.id, iso_id=merchant.iso_id)
    try:
        attempt = await billing_charges.pay_invoice(
            platform, tenant, invoice_id, payment_method_id=method_id, now=now, actor=actor
        )
    except BillingError as exc:
        if exc.code == "invalid_transition":
            return PayOutcome(code="already_paid")
        if exc.code == "nothing_due":
            return PayOutcome(code="nothing_due", message=error_text("nothing_due"))
        if exc.code == "no_payment_method":
            return PayOutcome(code="no_card", message=error_text("no_card"))
        if exc.code == "gateway_unavailable":
            return PayOutcome(code="unavailable", message=error_text("unavailable"))
        raise
    if attempt.outcome == "approved":
        return PayOutcome(code="paid", attempt_id=attempt.id)
    message = decline_message(attempt.outcome, attempt.response_code, attempt.response_text)
    return PayOutcome(code="declined", message=message, attempt_id=attempt.id)
