"""The sandbox gateway adapter: NMI's vault and sale behaviour, kept in the portal's database."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from portal.db.engine import tenant_transaction
from portal.payments.gateway import (
    GatewayDeclinedError,
    GatewayResponse,
    GatewayUnavailableError,
    HostedFields,
    Money,
    SaleRequest,
    VaultCustomer,
    VaultEntry,
)
from portal.payments.sandbox import store
from portal.payments.sandbox.outcomes import gateway_error, sale_result, verification
from portal.payments.sandbox.settings import GATEWAY_KEY, SandboxSettings, tokenization_key
from portal.tenancy.models import MerchantView

SCRIPT_URL = "/sandbox-gateway/collect.js"
MAX_ID_LENGTH = 200
_CURRENCY = re.compile(r"^[A-Z]{3}$")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


class SandboxAdapter:
    """One merchant's sandbox gateway. Database work joins the caller's transaction for the ISO.

    Refusals raise :class:`GatewayDeclinedError` after the adapter's own transaction commits,
    so a payment token used in a refused request stays used, as at NMI.
    """

    key = GATEWAY_KEY

    def __init__(self, settings: SandboxSettings | None, merchant: MerchantView, *, clock: Clock = utc_now) -> None:
        self.settings = settings or SandboxSettings()
        self.merchant = merchant
        self.tokenization_key = tokenization_key(self.settings, merchant)
        self._clock = clock

    def hosted_fields(self, brand_color: str) -> HostedFields:
        """The sandbox's Collect.js-compatible script, served by the portal itself (no extra origins)."""
        return HostedFields(
            script_url=SCRIPT_URL,
            origins=(),
            script_attributes={"data-tokenization-key": self.tokenization_key, "data-variant": "inline"},
            test_mode=True,
        )

    async def _missing(self, vault_id: str) -> GatewayResponse:
        """The error for a billing id that is not there: the vault is unknown, or only the billing id."""
        if await store.vault_exists(self.merchant.id, vault_id):
            return gateway_error("Invalid Billing Id")
        return gateway_error("Invalid Customer Vault Id")

    async def vault_add(
        self, *, payment_token: str, vault_id: str | None, billing_id: str, customer: VaultCustomer
    ) -> VaultEntry:
        """Verify the tokenized card and store it: in a new vault record (``new_vault``), or under ``vault_id``."""
        if not 0 < len(billing_id) <= MAX_ID_LENGTH:
            raise GatewayDeclinedError(gateway_error("Invalid Billing Id"))
        merchant, now = self.merchant, self._clock()
        refusal: GatewayResponse | None = None
        entry: VaultEntry | None = None
        async with tenant_transaction(merchant.iso_id):
            if vault_id is not None and not await store.vault_exists(merchant.id, vault_id, lock=True):
                refusal = gateway_error("Invalid Customer Vault Id")
            elif (card := await store.consume_token(merchant.id, payment_token, now)) is None:
                refusal = gateway_error("Invalid payment token")
            elif (refusal := verification(card.behaviour)) is None:
                new_vault = vault_id is None
                if vault_id is None:
                    vault_id = store.new_vault_id()
                    await store.insert_vault(
                        merchant.iso_id, merchant.id, vault_id, customer.customer_id, customer.email, customer.name
                    )
                if await store.insert_billing(merchant.iso_id, merchant.id, vault_id, billing_id, card, now):
                    entry = VaultEntry(vault_id=vault_id, billing_id=billing_id, card=card.card, new_vault=new_vault)
                else:
                    refusal = gateway_error("Duplicate Billing Id")
        if entry is None:
            assert refusal is not None
            raise GatewayDeclinedError(refusal)
        return entry

    async def vault_update(self, *, payment_token: str, vault_id: str, billing_id: str) -> VaultEntry:
        """Verify the tokenized card and put it behind an existing billing id."""
        merchant, now = self.merchant, self._clock()
        refusal: GatewayResponse | None = None
        entry: VaultEntry | None = None
        async with tenant_transaction(merchant.iso_id):
            if await store.stored_card(merchant.id, vault_id, billing_id) is None:
                refusal = await self._missing(vault_id)
            elif (card := await store.consume_token(merchant.id, payment_token, now)) is None:
                refusal = gateway_error("Invalid payment token")
            elif (refusal := verification(card.behaviour)) is None:
                await store.replace_billing(merchant.id, vault_id, billing_id, card, now)
                entry = VaultEntry(vault_id=vault_id, billing_id=billing_id, card=card.card)
        if entry is None:
            assert refusal is not None
            raise GatewayDeclinedError(refusal)
        return entry

    async def vault_delete(self, *, vault_id: str, billing_id: str, last_in_vault: bool) -> None:
        """Forget one billing id; with ``last_in_vault`` the whole vault record goes, billing ids and all.

        As at NMI, what is already gone (or was never this merchant's) counts as deleted.
        """
        merchant = self.merchant
        async with tenant_transaction(merchant.iso_id):
            if last_in_vault:
                await store.delete_vault(merchant.id, vault_id)
            else:
                await store.delete_billing(merchant.id, vault_id, billing_id)

    async def sale(self, *, vault_id: str, billing_id: str, amount: Money, order_id: str) -> GatewayResponse:
        """Charge a stored card; an order id that already has an approved sale returns that sale.

        As with NMI, only an approval settles an order: after a decline or an error, a sale with
        the same order id is a new attempt (and is recorded as one).
        """
        request = SaleRequest(vault_id=vault_id, billing_id=billing_id, amount=amount, order_id=order_id)
        (answer,) = await self.sales([request])
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sales(self, requests: list[SaleRequest]) -> list[GatewayResponse | Exception]:
        """:meth:`sale` for many stored cards at once, in one transaction (orders locked in sorted order)."""
        answers: list[GatewayResponse | Exception | None] = [self._refusal(request) for request in requests]
        todo = [(n, request) for n, request in enumerate(requests) if answers[n] is None]
        if not todo:
            return [answer for answer in answers if answer is not None]
        merchant = self.merchant
        async with tenant_transaction(merchant.iso_id):
            await store.lock_orders(merchant.id, [request.order_id for _, request in todo])
            found = await store.approved_sales_and_cards(
                merchant.id, [(request.order_id, request.vault_id, request.billing_id) for _, request in todo]
            )
            sales: list[tuple[int, SaleRequest, GatewayResponse]] = []
            for (n, request), (earlier, card) in zip(todo, found, strict=True):
                if earlier is not None:
                    answers[n] = earlier
                elif card is None:
                    missing = await self._missing(request.vault_id)
                    answers[n] = gateway_error(missing.response_text, order_id=request.order_id)
                else:
                    result = sale_result(
                        card.behaviour, transaction_id=store.new_transaction_id(), order_id=request.order_id
                    )
                    sales.append((n, request, result))
            recorded = await store.record_sales(
                merchant.iso_id, merchant.id,
                [(request.vault_id, request.billing_id, request.amount, result) for _, request, result in sales],
            )  # fmt: skip
            for (n, request, _), saved in zip(sales, recorded, strict=True):
                # None: the order was approved meanwhile by a sale this transaction could not wait for
                answers[n] = saved or await store.approved_sale(merchant.id, request.order_id)
        return [
            answer
            if answer is not None
            else GatewayUnavailableError(f"a concurrent sale of order {request.order_id} is not visible yet; retry")
            for answer, request in zip(answers, requests, strict=True)
        ]

    def _refusal(self, request: SaleRequest) -> GatewayResponse | None:
        """The gateway's rejection of a malformed sale request, before anything is looked up."""
        if not 0 < len(request.order_id) <= MAX_ID_LENGTH:
            return gateway_error("Invalid order id")
        if request.amount.minor_units <= 0:
            return gateway_error("Invalid amount", order_id=request.order_id)
        if not _CURRENCY.match(request.amount.currency):
            return gateway_error("Invalid currency", order_id=request.order_id)
        return None

    async def aclose(self) -> None:
        """Nothing to release: the sandbox holds no connections of its own."""


def create_adapter(settings: Any, merchant: Any) -> SandboxAdapter:
    """The ``PaymentGateway.factory`` of the sandbox gateway."""
    return SandboxAdapter(settings, merchant)
