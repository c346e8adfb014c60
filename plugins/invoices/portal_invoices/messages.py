"""What customers are told about payments: outcomes, declines and refusals, in words.

Pages that show an error after a redirect carry only a code (``?error=declined``); sentences
come from here, and the gateway's own decline text is read from the ledger's payment attempt,
never from the request.
"""

from __future__ import annotations

DECLINE_ADVICE: dict[int, str] = {
    201: "Your bank declined the payment.",
    202: "Your bank declined the payment for insufficient funds.",
    203: "Your bank declined the payment: the card is over its limit.",
    223: "The card has expired.",
    225: "The security code did not match.",
    250: "Your bank declined the payment.",
}
"""Gateway response codes to the sentence that starts a decline message."""

ERRORS: dict[str, str] = {
    "no_card": "Please choose a card to pay with.",
    "expired": "That card has expired. Please choose another card or enter a new one.",
    "in_progress": "This payment is already being processed. Please wait a moment and reload the page.",
    "nothing_due": "This invoice has nothing left to pay.",
    "unavailable": "The card processor did not answer. Nothing was charged yet; please try again in a few minutes.",
    "not_set_up": "Card payments are not set up for this merchant yet. Please contact them for help.",
    "card_not_saved": "The new card could not be used. Please check the details or use another card.",
    "no_details": "The card details did not arrive. Please enter them again.",
}
"""Error codes (``?error=``) to sentences."""

REFUSALS: dict[str, str] = {
    "pay_not_allowed": "Paying invoices here is not available. Please contact the merchant.",
    "new_card_not_allowed": "Paying with a new card is not available here. Please use a card on file.",
    "details_not_allowed": "Changing billing details is not available here. Please contact the merchant.",
}
"""Refusals of what the pages never offer (the settings forbid it): answered 403."""

DONE: dict[str, str] = {
    "paid": "Thank you! {number} is paid.",
    "already_paid": "{number} was already paid; nothing more was charged.",
}
"""``?done=`` codes on the invoice page."""


def outcome_text(outcome: str, response_code: int, response_text: str) -> str:
    """A payment attempt's outcome in words: ``Paid``, or why it was declined, with the bank's words."""
    if outcome == "approved":
        return "Paid"
    lead = DECLINE_ADVICE.get(response_code, "The payment was declined." if outcome == "declined" else "")
    if outcome == "error" and not lead:
        lead = "The card processor could not complete the payment."
    said = response_text.strip().rstrip(".")
    return f"{lead} (“{said}”)" if said else lead


def decline_message(outcome: str, response_code: int, response_text: str) -> str:
    """The pay page's message after a decline: what happened, and that the invoice is still open."""
    return (
        f"Payment declined. {outcome_text(outcome, response_code, response_text)} "
        "Nothing was charged and the invoice is still open. Please try another card."
    )
