"""The payment gateway contract every adapter implements, and the results it returns.

Card data never reaches the portal: a hosted-fields form (the gateway's script, in the
gateway's frames) turns the card into a single-use payment token, and the portal sends that
token to the gateway's vault. The portal keeps only the vault reference, brand, last four
digits and expiry.

Adapters come from the ``portal_payment_gateways`` hook. A merchant's settings name the
gateway and hold its credentials (see :mod:`portal.payments.choice`).
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import msgspec

Outcome = Literal["approved", "declined", "error"]

STOP_RECURRING_CODES = frozenset({261, 262})
"""NMI "stop recurring" declines: the card holder asked to stop; never retry these."""

RETRYABLE_CODES = frozenset({200, 201, 202, 203, 264, 400, 420, 421, 440})
"""Soft declines and processor or network trouble: retrying later may succeed."""


class HostedFields(msgspec.Struct, frozen=True, kw_only=True):
    """What a page needs to show the gateway's hosted tokenization form.

    The page loads ``script_url`` (with the request's CSP nonce) with ``script_attributes`` on
    the tag; the script offers the Collect.js API (``CollectJS.configure``,
    ``CollectJS.startPaymentRequest``) and calls back with a single-use ``payment_token``.
    """

    script_url: str
    origins: tuple[str, ...]
    """Origins the page's Content-Security-Policy must allow for scripts, frames and requests
    (empty when the script is served by the portal itself)."""
    script_attributes: dict[str, str]
    """Attributes of the script tag, such as ``data-tokenization-key``."""
    test_mode: bool = False
    """The gateway moves no money (the sandbox): pages say so and show the test cards."""


class Card(msgspec.Struct, frozen=True, kw_only=True):
    """What the portal may keep of a card: never the number."""

    brand: str
    """Lower-case brand: ``visa``, ``mastercard``, ``amex``, ``discover``, ... or ``card``."""
    last4: str
    exp_month: int
    exp_year: int


class VaultEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A card stored in the gateway's vault: the customer vault id plus one billing id."""

    vault_id: str
    billing_id: str
    card: Card
    new_vault: bool = False
    """This request created the customer vault record (False when it joined an existing one)."""


class VaultCustomer(msgspec.Struct, frozen=True, kw_only=True):
    """Who a vault record belongs to, as the gateway is told."""

    customer_id: str
    email: str
    name: str


class Money(msgspec.Struct, frozen=True):
    """An amount in integer minor units of an ISO 4217 currency."""

    minor_units: int
    currency: str


class GatewayResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one gateway request, typed."""

    outcome: Outcome
    response_code: int
    """NMI-style result code: 100 approved, 2xx declined, 3xx gateway, 4xx processor errors."""
    response_text: str
    transaction_id: str | None = None
    authorization_code: str | None = None
    order_id: str | None = None

    @property
    def approved(self) -> bool:
        """True when the gateway accepted the request."""
        return self.outcome == "approved"

    @property
    def stop_recurring(self) -> bool:
        """The card holder asked to stop recurring charges (NMI 261, 262)."""
        return self.response_code in STOP_RECURRING_CODES

    @property
    def retryable(self) -> bool:
        """A later retry of the same charge may succeed; never for "stop recurring" codes."""
        return not self.approved and self.response_code in RETRYABLE_CODES


def classify(response: GatewayResponse) -> Literal["approved", "retryable", "final"]:
    """Approved, retryable (a soft decline or a processor error) or final."""
    if response.approved:
        return "approved"
    return "retryable" if response.retryable else "final"


class GatewayDeclinedError(Exception):
    """The gateway refused a vault or sale request; ``response`` says why."""

    def __init__(self, response: GatewayResponse) -> None:
        super().__init__(f"{response.outcome} {response.response_code}: {response.response_text}")
        self.response = response


class GatewayUnavailableError(Exception):
    """The gateway could not be reached or answered something unreadable (safe to retry)."""


class SaleRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One sale of a stored card, for :class:`BatchSales`."""

    vault_id: str
    billing_id: str
    amount: Money
    order_id: str


@runtime_checkable
class BatchSales(Protocol):
    """An adapter that may also charge many stored cards in one request (optional; the sandbox does).

    The billing engine charges a batch of invoices with ``sales`` when the merchant's adapter has
    it, else with ``sale`` calls side by side. Each answer is what ``sale`` would have answered
    for that request, or the exception it would have raised (:class:`GatewayUnavailableError`).
    """

    async def sales(self, requests: list[SaleRequest]) -> list[GatewayResponse | Exception]:
        """The answer to each request, in order."""
        ...


@runtime_checkable
class PaymentGatewayAdapter(Protocol):
    """One merchant's connection to a gateway, built by a :class:`portal.plugin.PaymentGateway`.

    Vault methods raise :class:`GatewayDeclinedError` when the gateway refuses (an expired
    card, say) and :class:`GatewayUnavailableError` when it cannot be reached. ``sale`` returns
    a :class:`GatewayResponse` for approvals and declines alike.
    """

    key: str

    def hosted_fields(self, brand_color: str) -> HostedFields:
        """The hosted tokenization form's parameters, tinted with ``brand_color``."""
        ...

    async def vault_add(
        self, *, payment_token: str, vault_id: str | None, billing_id: str, customer: VaultCustomer
    ) -> VaultEntry:
        """Store a tokenized card: a new customer vault when ``vault_id`` is None, else a billing id."""
        ...

    async def vault_update(self, *, payment_token: str, vault_id: str, billing_id: str) -> VaultEntry:
        """Replace the card behind an existing billing id."""
        ...

    async def vault_delete(self, *, vault_id: str, billing_id: str, last_in_vault: bool) -> None:
        """Forget one card; with ``last_in_vault`` the whole customer vault record goes.

        A card (or record) that is already gone counts as deleted. :class:`GatewayDeclinedError`
        means the gateway refused and the card is still there.
        """
        ...

    async def sale(self, *, vault_id: str, billing_id: str, amount: Money, order_id: str) -> GatewayResponse:
        """Charge a stored card. Retrying with the same ``order_id`` never charges twice."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
