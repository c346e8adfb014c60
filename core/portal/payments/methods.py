"""Payment methods: a customer's cards on file, their default card, and the gateway vault.

The portal keeps a card's gateway vault reference (customer vault id and billing id), brand,
last four digits and expiry in ``portal_payment_method``, never the number. Billing charges the
default card through :func:`charge_ready` whether or not a feature plugin (cards) is on for the
merchant; the cards plugin gives customers pages over these functions.

Every query is scoped to one merchant and one customer. Row-level security keeps other ISOs
out; the ``merchant_id``/``customer_id`` conditions keep other merchants and other customers of
the same ISO out, so a foreign id reads as missing.

Transactions: each function runs in ``tenant_transaction(iso_id)``, which joins the caller's
transaction for that ISO when one is open. Changes hold the customer's payment-method lock, so
two requests cannot interleave, and every write of one change commits together. Callers add
their own writes to a change (events, a fulfilled link) through ``then``, which runs inside its
transaction. :func:`attach` calls the gateway before its transaction, so it refuses to run
inside one; :func:`remove` calls the gateway last, inside its transaction (a card the gateway
still holds stays on file).
"""

from __future__ import annotations

import asyncio
import calendar
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import msgspec

from portal.db.engine import current_iso, fetch, tenant_transaction, transaction_lock
from portal.ids import new_id
from portal.payments.choice import GatewayAdapters, GatewayChoice, GatewayNotConfiguredError
from portal.payments.gateway import (
    Card,
    GatewayDeclinedError,
    GatewayUnavailableError,
    PaymentGatewayAdapter,
    VaultCustomer,
    VaultEntry,
)
from portal.tenancy.models import CustomerView, MerchantView, Tenant

log = logging.getLogger(__name__)

TABLE = "portal_payment_method"
COLUMNS = "id, customer_id, gateway, vault_id, billing_id, brand, last4, exp_month, exp_year, is_default, created_at"

GATEWAY_BUDGET = 15.0
"""Seconds a gateway call may take while a database transaction (and its connection) waits on it."""


class PaymentMethod(msgspec.Struct, frozen=True, kw_only=True):
    """A card on file: the gateway vault reference and what may be shown of the card."""

    id: str
    """``pm_…``; also the card's billing id at the gateway (as the gateway spells it)."""
    customer_id: str
    gateway: str
    """Key of the gateway that vaulted the card (``nmi``, ``sandbox``, …)."""
    vault_id: str
    """The customer vault record at that gateway."""
    billing_id: str
    """The card within the vault record."""
    brand: str
    """Lower case: ``visa``, ``mastercard``, ``amex``, ``discover``, … or ``card``."""
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    created_at: datetime


class Attached(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`attach` did."""

    method: PaymentMethod
    """The card now on file (as it is after the change)."""
    new: bool
    """False: the same card was on file already; it became the default instead of gaining a twin."""
    default_changed: bool
    """``method`` became the customer's default card."""
    previous_default: str | None
    """The default card before the change, if there was one."""
    retired: PaymentMethod | None = None
    """The former default taken off file to make room (``replacing`` at the limit), as it was."""


class DefaultChange(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`make_default` did."""

    method: PaymentMethod
    """The card, now the default."""
    previous_default: str | None
    """The default card before the change (the card itself when nothing changed)."""
    changed: bool
    """False: the card was the default already; nothing was written."""


class Removed(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`remove` did."""

    method: PaymentMethod
    """The card taken off file, as it was before (``is_default`` tells whether it was the default)."""
    successor: PaymentMethod | None
    """The new default when the default card went; ``None`` when it was not the default, or no
    remaining card is usable (all expired)."""


class PaymentMethodNotFoundError(LookupError):
    """No card with that id is on file for this customer at this merchant."""


class PaymentMethodError(Exception):
    """A change that cannot be made. ``code`` says why; ``method_id`` is the card it is about.

    Codes: ``limit`` (the customer has ``max_methods`` cards), ``duplicate`` (the card is on file
    already), ``already_default`` (replacing the default card with itself), ``try_again`` (the
    vault record the card went into lost its last card meanwhile; enter it again),
    ``expired_default`` (an expired card cannot become the default), ``remove_refused`` (the
    gateway refused to delete the card; it stays on file) and ``unavailable`` (the gateway did
    not answer a delete; the card stays on file).
    """

    def __init__(self, code: str, method_id: str | None = None) -> None:
        super().__init__(code if method_id is None else f"{code}: {method_id}")
        self.code = code
        self.method_id = method_id


# --- dates ------------------------------------------------------------------------------------


def expires_on(method: PaymentMethod) -> date:
    """The last day the card is valid (cards expire at the end of their expiry month)."""
    return date(method.exp_year, method.exp_month, calendar.monthrange(method.exp_year, method.exp_month)[1])


def merchant_today(merchant: MerchantView, now: datetime | None = None) -> date:
    """Today (or ``now``'s day) in the merchant's time zone."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(merchant.timezone)).date()


# --- reading ----------------------------------------------------------------------------------


def _methods(rows: list[dict[str, object]]) -> list[PaymentMethod]:
    return [msgspec.convert(row, PaymentMethod) for row in rows]


async def lock_customer(iso_id: str, merchant_id: str, customer_id: str) -> None:
    """Serialise payment-method changes of one customer until the transaction ends."""
    async with tenant_transaction(iso_id):
        await transaction_lock("payment_methods", merchant_id, customer_id)


async def list_methods(iso_id: str, merchant_id: str, customer_id: str, *, lock: bool = False) -> list[PaymentMethod]:
    """The customer's cards on file, default first, then newest first.

    ``lock`` first takes the customer's payment-method lock (until the transaction ends), for a
    change decided on what is read.
    """
    async with tenant_transaction(iso_id):
        if lock:
            await transaction_lock("payment_methods", merchant_id, customer_id)
        rows = await fetch(
            f"SELECT {COLUMNS} FROM {TABLE} "
            "WHERE merchant_id = $1 AND customer_id = $2 AND removed_at IS NULL "
            "ORDER BY is_default DESC, created_at DESC, id DESC",
            merchant_id,
            customer_id,
        )
    return _methods(rows)


async def default_method(iso_id: str, merchant_id: str, customer_id: str) -> PaymentMethod | None:
    """The customer's default card, if any (it may have expired: see :func:`charge_ready`)."""
    async with tenant_transaction(iso_id):
        rows = await fetch(
            f"SELECT {COLUMNS} FROM {TABLE} "
            "WHERE merchant_id = $1 AND customer_id = $2 AND is_default AND removed_at IS NULL",
            merchant_id,
            customer_id,
        )
    return _methods(rows)[0] if rows else None


async def removed_method(iso_id: str, merchant_id: str, customer_id: str, method_id: str) -> PaymentMethod | None:
    """A card of the customer that was taken off file (its row stays for the audit trail)."""
    async with tenant_transaction(iso_id):
        rows = await fetch(
            f"SELECT {COLUMNS} FROM {TABLE} "
            "WHERE merchant_id = $1 AND customer_id = $2 AND id = $3 AND removed_at IS NOT NULL",
            merchant_id,
            customer_id,
            method_id,
        )
    return _methods(rows)[0] if rows else None


async def charge_ready(tenant: Tenant, customer_id: str, *, today: date | None = None) -> PaymentMethod | None:
    """The card to charge the customer with now, or ``None`` when there is none to charge.

    That is the default card, unless it has expired (``today`` defaults to today in the
    merchant's time zone) or was vaulted at a gateway the merchant no longer uses. Charge it
    with ``sale(vault_id=…, billing_id=…)`` on ``platform.gateways.for_tenant(tenant)``.
    """
    merchant = tenant.merchant
    method = await default_method(merchant.iso_id, merchant.id, customer_id)
    if method is None or expires_on(method) < (today or merchant_today(merchant)):
        return None
    choice = tenant.gateway
    if not isinstance(choice, GatewayChoice) or method.gateway != choice.key:
        return None
    return method


def _find(methods: list[PaymentMethod], method_id: str) -> PaymentMethod:
    for method in methods:
        if method.id == method_id:
            return method
    raise PaymentMethodNotFoundError(method_id)


def _default_of(methods: list[PaymentMethod]) -> PaymentMethod | None:
    return next((method for method in methods if method.is_default), None)


# --- writing (inside the caller's transaction, holding the customer's lock) -------------------


async def _insert(iso_id: str, merchant_id: str, method: PaymentMethod) -> None:
    await fetch(
        f"""
        INSERT INTO {TABLE} (id, iso_id, merchant_id, customer_id, gateway, vault_id, billing_id,
                             brand, last4, exp_month, exp_year, is_default, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        """,
        method.id, iso_id, merchant_id, method.customer_id, method.gateway, method.vault_id, method.billing_id,
        method.brand, method.last4, method.exp_month, method.exp_year, method.is_default, method.created_at,
    )  # fmt: skip


async def _clear_default(merchant_id: str, customer_id: str) -> None:
    await fetch(
        f"UPDATE {TABLE} SET is_default = false WHERE merchant_id = $1 AND customer_id = $2 AND is_default",
        merchant_id,
        customer_id,
    )


async def _set_default(merchant_id: str, customer_id: str, method_id: str) -> None:
    """Make ``method_id`` the customer's only default card."""
    await _clear_default(merchant_id, customer_id)
    await fetch(
        f"UPDATE {TABLE} SET is_default = true "
        "WHERE merchant_id = $1 AND customer_id = $2 AND id = $3 AND removed_at IS NULL",
        merchant_id,
        customer_id,
        method_id,
    )


async def _mark_removed(merchant_id: str, customer_id: str, method_id: str) -> None:
    await fetch(
        f"UPDATE {TABLE} SET removed_at = now(), is_default = false "
        "WHERE merchant_id = $1 AND customer_id = $2 AND id = $3 AND removed_at IS NULL",
        merchant_id,
        customer_id,
        method_id,
    )


# --- changes ----------------------------------------------------------------------------------


async def attach(
    gateways: GatewayAdapters,
    tenant: Tenant,
    customer: CustomerView,
    payment_token: str,
    *,
    make_default: bool,
    replacing: bool = False,
    max_methods: int | None = None,
    then: Callable[[Attached], Awaitable[None]] | None = None,
) -> Attached:
    """Vault the card behind ``payment_token`` at the merchant's gateway and put it on file.

    The first card becomes the default; ``make_default`` moves the default to the new card.
    ``replacing`` is the update-after-a-failed-charge flow: the new card becomes the default and,
    when the customer is at ``max_methods``, the current default makes room (it is taken off file
    and out of the vault in the same transaction, :attr:`Attached.retired`).

    A card already on file (same gateway, brand, last four digits and expiry) gets no twin: its
    new vault entry is deleted again and the card on file stays as it is, except that it becomes
    the default when ``make_default`` or ``replacing`` asks for that; when nothing would change,
    :class:`PaymentMethodError` says so (``duplicate``, or ``already_default`` when replacing).

    The gateway is called before the transaction (so this refuses to run inside one); ``then``
    runs inside it after the card rows are written, and a vault entry the portal ends up not
    recording (the transaction failed, or the card was on file already) is deleted again.

    Raises :class:`~portal.payments.choice.GatewayNotConfiguredError` (no gateway),
    :class:`PaymentMethodError`, and the gateway's :class:`GatewayDeclinedError` (the card was
    refused) or :class:`GatewayUnavailableError` (the gateway did not answer).
    """
    if current_iso() is not None:
        raise RuntimeError("attach calls the gateway before its own transaction; call it outside one")
    adapter = gateways.for_tenant(tenant)
    merchant = tenant.merchant
    on_file = await list_methods(merchant.iso_id, merchant.id, customer.id)
    if max_methods is not None and len(on_file) >= max_methods and not replacing:
        raise PaymentMethodError("limit")  # checked again below; a replacement may take its card's place
    same_gateway = [method for method in on_file if method.gateway == adapter.key]
    vault_id = max(same_gateway, key=lambda method: method.created_at).vault_id if same_gateway else None
    method_id = new_id("pm")
    try:
        entry = await adapter.vault_add(
            payment_token=payment_token,
            vault_id=vault_id,
            billing_id=method_id,
            customer=VaultCustomer(customer_id=customer.id, email=customer.email, name=customer.name),
        )
    except GatewayDeclinedError as exc:
        _log_refusal(merchant.slug, "add", exc)
        raise
    except GatewayUnavailableError as exc:
        log.warning("gateway unavailable for %s: %s", merchant.slug, exc)
        raise
    existing: PaymentMethod | None = None
    try:
        async with tenant_transaction(merchant.iso_id):
            methods = await list_methods(merchant.iso_id, merchant.id, customer.id, lock=True)
            previous = _default_of(methods)
            existing = _same_card(methods, adapter.key, entry.card)
            if existing is not None:  # no twin: the card on file stays, at most it becomes the default
                if existing.is_default or not (make_default or replacing):
                    raise PaymentMethodError("already_default" if replacing else "duplicate", existing.id)
                await _set_default(merchant.id, customer.id, existing.id)
                result = Attached(
                    method=msgspec.structs.replace(existing, is_default=True),
                    new=False,
                    default_changed=True,
                    previous_default=previous.id if previous else None,
                )
                if then is not None:
                    await then(result)
            else:
                if vault_id is not None and not any(other.vault_id == entry.vault_id for other in methods):
                    # The vault record this card was added to lost its last card meanwhile, and removing
                    # that card may have deleted the record: nothing on file vouches for it any more.
                    # (A record the gateway joined on its own, with no card on file, is fine: an undo
                    # deletes a whole record only when no card on file uses it.)
                    raise PaymentMethodError("try_again")
                retired = None
                if max_methods is not None and len(methods) >= max_methods:
                    if not (replacing and previous is not None):
                        raise PaymentMethodError("limit")
                    retired = previous  # the failing card makes room for its replacement
                is_default = make_default or replacing or previous is None
                method = PaymentMethod(
                    id=method_id,
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
                    await _clear_default(merchant.id, customer.id)
                await _insert(merchant.iso_id, merchant.id, method)
                if retired is not None:
                    await _mark_removed(merchant.id, customer.id, retired.id)
                result = Attached(
                    method=method,
                    new=True,
                    default_changed=is_default,
                    previous_default=previous.id if previous else None,
                    retired=retired,
                )
                if then is not None:
                    await then(result)
                if retired is not None:
                    others = [other for other in methods if other.id != retired.id] + [method]
                    await _delete_from_vault(adapter, tenant, retired, others)
    except BaseException:
        await _undo_vault_add(adapter, tenant, customer.id, entry)
        raise
    if existing is not None:  # the card was on file already: the vault entry just made is not needed
        await _undo_vault_add(adapter, tenant, customer.id, entry)
    return result


async def make_default(
    merchant: MerchantView, customer_id: str, method_id: str, *, today: date | None = None
) -> DefaultChange:
    """Make a card on file the customer's default (nothing is written when it already is).

    An expired card cannot become the default (:class:`PaymentMethodError` ``expired_default``);
    ``today`` defaults to today in the merchant's time zone. Raises
    :class:`PaymentMethodNotFoundError` for an id that is not one of the customer's cards on file.
    """
    async with tenant_transaction(merchant.iso_id):
        methods = await list_methods(merchant.iso_id, merchant.id, customer_id, lock=True)
        method = _find(methods, method_id)
        if method.is_default:
            return DefaultChange(method=method, previous_default=method.id, changed=False)
        if expires_on(method) < (today or merchant_today(merchant)):
            raise PaymentMethodError("expired_default", method.id)
        previous = _default_of(methods)
        await _set_default(merchant.id, customer_id, method.id)
    return DefaultChange(
        method=msgspec.structs.replace(method, is_default=True),
        previous_default=previous.id if previous else None,
        changed=True,
    )


async def remove(
    gateways: GatewayAdapters,
    tenant: Tenant,
    customer_id: str,
    method_id: str,
    *,
    today: date | None = None,
    then: Callable[[Removed], Awaitable[None]] | None = None,
) -> Removed:
    """Take a card off file and out of the gateway's vault.

    When the default card goes, the newest remaining card that has not expired (on ``today``,
    by default today in the merchant's time zone) becomes the default; none does when every
    remaining card has expired. ``then`` runs inside the transaction after the rows are
    written; the gateway is called last, for at most :data:`GATEWAY_BUDGET` seconds, and a
    refusal or no answer rolls everything back (:class:`PaymentMethodError` ``remove_refused``
    or ``unavailable``): the card stays on file. A card vaulted at a gateway the merchant no
    longer uses is taken off file without a gateway call. The row stays (``removed_at``).

    Checks the caller makes first (may this customer remove cards? is the only card needed?)
    belong in the same transaction: open ``tenant_transaction`` and read with
    ``list_methods(..., lock=True)`` before calling this.
    """
    merchant = tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        methods = await list_methods(merchant.iso_id, merchant.id, customer_id, lock=True)
        method = _find(methods, method_id)
        others = [other for other in methods if other.id != method.id]
        await _mark_removed(merchant.id, customer_id, method.id)
        successor = None
        if method.is_default:
            day = today or merchant_today(merchant)
            usable = [other for other in others if expires_on(other) >= day]
            successor = max(usable, key=lambda other: (other.created_at, other.id)) if usable else None
            if successor is not None:
                await _set_default(merchant.id, customer_id, successor.id)
                successor = msgspec.structs.replace(successor, is_default=True)
        result = Removed(method=method, successor=successor)
        if then is not None:
            await then(result)
        try:
            adapter: PaymentGatewayAdapter | None = gateways.for_tenant(tenant)
        except GatewayNotConfiguredError:
            adapter = None
        await _delete_from_vault(adapter, tenant, method, others)
    return result


# --- the vault --------------------------------------------------------------------------------


def _same_card(methods: list[PaymentMethod], gateway: str, new: Card) -> PaymentMethod | None:
    """The card on file that ``new`` duplicates: same gateway, brand, last four digits and expiry.

    Gateways report no card fingerprint; these are also all a page shows to tell cards apart.
    """
    key = (gateway, new.brand, new.last4, new.exp_month, new.exp_year)
    return next((m for m in methods if (m.gateway, m.brand, m.last4, m.exp_month, m.exp_year) == key), None)


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
        methods = await list_methods(merchant.iso_id, merchant.id, customer_id, lock=True)
        in_use = any(method.vault_id == entry.vault_id and method.gateway == adapter.key for method in methods)
        async with asyncio.timeout(GATEWAY_BUDGET):
            await adapter.vault_delete(
                vault_id=entry.vault_id, billing_id=entry.billing_id, last_in_vault=entry.new_vault and not in_use
            )
    except Exception:
        log.warning("card %s stays in the %s vault of %s unrecorded", entry.billing_id, adapter.key, merchant.slug)


async def _delete_from_vault(
    adapter: PaymentGatewayAdapter | None, tenant: Tenant, method: PaymentMethod, remaining: list[PaymentMethod]
) -> None:
    """Delete a card at the gateway inside the caller's transaction; refusals roll the change back."""
    slug = tenant.merchant.slug
    if adapter is None or method.gateway != adapter.key:
        log.info("card %s of %s was vaulted at %s, no longer the merchant's gateway", method.id, slug, method.gateway)
        return
    last_in_vault = not any(other.vault_id == method.vault_id for other in remaining)
    try:
        async with asyncio.timeout(GATEWAY_BUDGET):
            await adapter.vault_delete(
                vault_id=method.vault_id, billing_id=method.billing_id, last_in_vault=last_in_vault
            )
    except GatewayDeclinedError as exc:
        _log_refusal(slug, "delete", exc)
        raise PaymentMethodError("remove_refused", method.id) from exc
    except (GatewayUnavailableError, TimeoutError) as exc:
        log.warning("gateway unavailable for %s while deleting %s: %s", slug, method.id, exc)
        raise PaymentMethodError("unavailable", method.id) from exc
