"""What customers are told about payments: outcomes, declines and refusals, in words.

Pages that show an error after a redirect carry only a code (``?error=declined``); sentences
come from here, and the gateway's own decline text is read from the ledger's payment attempt,
never from the request. The tables hold English marked for translation (``N_``); they are
translated where they are shown (:func:`error_text`, :func:`refusal_text`, ``_()``).
"""

from __future__ import annotations

from portal.sdk import N_
from portal.sdk import gettext as _

DECLINE_ADVICE: dict[int, str] = {
    201: N_("Your bank declined the payment."),
    202: N_("Your bank declined the payment for insufficient funds."),
    203: N_("Your bank declined the payment: the card is over its limit."),
    223: N_("The card has expired."),
    225: N_("The security code did not match."),
    250: N_("Your bank declined the payment."),
}
"""Gateway response codes to the sentence that starts a decline message."""

ERRORS: dict[str, str] = {
    "no_card": N_("Please choose a card to pay with."),
    "expired": N_("That card has expired. Please choose another card or enter a new one."),
    "in_progress": N_("This payment is already being processed. Please wait a moment and reload the page."),
    "nothing_due": N_("This invoice has nothing left to pay."),
    "unavailable": N_("The card processor did not answer. Nothing was charged yet; please try again in a few minutes."),
    "not_set_up": N_("Card payments are not set up for this merchant yet. Please contact them for help."),
    "card_not_saved": N_("The new card could not be used. Please check the details or use another card."),
    "no_details": N_("The card details did not arrive. Please enter them again."),
}
"""Error codes (``?error=``) to sentences."""

REFUSALS: dict[str, str] = {
    "pay_not_allowed": N_("Paying invoices here is not available. Please contact the merchant."),
    "new_card_not_allowed": N_("Paying with a new card is not available here. Please use a card on file."),
    "details_not_allowed": N_("Changing billing details is not available here. Please contact the merchant."),
}
"""Refusals of what the pages never offer (the settings forbid it): answered 403."""

DONE: dict[str, str] = {
    "paid": N_("Thank you! %(number)s is paid."),
    "already_paid": N_("%(number)s was already paid; nothing more was charged."),
}
"""``?done=`` codes on the invoice page."""


def error_text(code: str) -> str:
    """The sentence of error ``code`` in the current language (empty for an unknown code)."""
    return _(ERRORS[code]) if code in ERRORS else ""


def refusal_text(code: str) -> str:
    """The sentence of refusal ``code`` in the current language."""
    return _(REFUSALS[code])


def done_text(code: str, number: str) -> str | None:
    """The invoice page's notice for ``?done=code`` (None for an unknown code)."""
    return _(DONE[code]) % {"number": number} if code in DONE else None


def with_bank_words(lead: str, response_text: str) -> str:
    """``lead`` followed by the bank's own words in quotes, when it said any."""
    said = response_text.strip().rstrip(".")
    return _("%(lead)s (“%(said)s”)") % {"lead": lead, "said": said} if said else lead


def outcome_text(outcome: str, response_code: int, response_text: str) -> str:
    """A payment attempt's outcome in words: ``Paid``, or why it was declined, with the bank's words."""
    if outcome == "approved":
        return _("Paid")
    advice = DECLINE_ADVICE.get(response_code)
    if advice is not None:
        lead = _(advice)
    elif outcome == "declined":
        lead = _("The payment was declined.")
    elif outcome == "error":
        lead = _("The card processor could not complete the payment.")
    else:
        lead = ""
    return with_bank_words(lead, response_text)


def decline_message(outcome: str, response_code: int, response_text: str) -> str:
    """The pay page's message after a decline: what happened, and that the invoice is still open."""
    return _(
        "Payment declined. %(reason)s Nothing was charged and the invoice is still open. Please try another card."
    ) % {"reason": outcome_text(outcome, response_code, response_text)}
