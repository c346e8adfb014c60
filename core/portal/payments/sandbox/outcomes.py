"""What the sandbox answers, as NMI would: response codes and texts per test-card behaviour."""

from __future__ import annotations

import secrets

from portal.payments.gateway import GatewayResponse, Outcome
from portal.payments.sandbox.cards import Behaviour

APPROVED = (100, "SUCCESS")

DECLINES: dict[Behaviour, tuple[Outcome, int, str]] = {
    Behaviour.INSUFFICIENT_FUNDS: ("declined", 202, "Insufficient funds"),
    Behaviour.EXPIRED_CARD: ("declined", 223, "Expired card"),
    Behaviour.PROCESSOR_ERROR: ("error", 400, "Transaction error returned by processor"),
    Behaviour.DECLINE_AFTER_ATTACH: ("declined", 201, "Do not honor"),
    Behaviour.STOP_RECURRING_AFTER_ATTACH: ("declined", 261, "Declined-Stop all recurring payments"),
}
"""Behaviour to (outcome, NMI response code, response text) for a refused sale."""

REFUSED_AT_VERIFICATION = frozenset({Behaviour.INSUFFICIENT_FUNDS, Behaviour.EXPIRED_CARD, Behaviour.PROCESSOR_ERROR})
"""Cards the vault's verification refuses, so they never get on file."""


def gateway_error(text: str, *, order_id: str | None = None) -> GatewayResponse:
    """A request the gateway itself rejected (NMI response 3, code 300)."""
    return GatewayResponse(outcome="error", response_code=300, response_text=text, order_id=order_id)


def verification(behaviour: Behaviour) -> GatewayResponse | None:
    """The refusal of a vault add or update for this card; None when the card may go on file."""
    if behaviour not in REFUSED_AT_VERIFICATION:
        return None
    outcome, code, text = DECLINES[behaviour]
    return GatewayResponse(outcome=outcome, response_code=code, response_text=text)


def sale_result(behaviour: Behaviour, *, transaction_id: str, order_id: str) -> GatewayResponse:
    """The answer to a sale on a stored card with this behaviour."""
    if behaviour in DECLINES:
        outcome, code, text = DECLINES[behaviour]
        return GatewayResponse(
            outcome=outcome, response_code=code, response_text=text, transaction_id=transaction_id, order_id=order_id
        )
    code, text = APPROVED
    return GatewayResponse(
        outcome="approved",
        response_code=code,
        response_text=text,
        transaction_id=transaction_id,
        authorization_code=f"{secrets.randbelow(1_000_000):06d}",
        order_id=order_id,
    )
