"""What customers are told when a card change cannot be made.

Pages that show an error after a redirect carry only its code (``?error=insufficient_funds``);
the sentence comes from :data:`ERRORS`, so no text from a request ever reaches a page. The
tables hold the English sentences, marked for translation; :func:`error_text` gives one in the
current language.
"""

from __future__ import annotations

from portal.sdk import N_, GatewayResponse, MerchantView, ngettext
from portal.sdk import gettext as _

ERRORS: dict[str, str] = {
    "insufficient_funds": N_("Your bank declined this card for insufficient funds. Please use another card."),
    "over_limit": N_("Your bank declined this card: it is over its limit. Please use another card."),
    "card_details": N_("The card details were not accepted. Please check them and try again."),
    "unknown_bank": N_("The card's bank was not recognised. Please use another card."),
    "unknown_card": N_("Your bank has no record of this card number. Please check it or use another card."),
    "card_expired": N_("This card has expired. Please use another card."),
    "expiry_invalid": N_("The expiry date is not valid. Please check it and try again."),
    "cvv_mismatch": N_("The security code does not match. Please check it and try again."),
    "bank_declined": N_("Your bank declined this card. Please contact your bank or use another card."),
    "card_type": N_("This type of card is not accepted here. Please use another card."),
    "declined": N_("Your bank declined this card. Please try another card or contact your bank."),
    "processor": N_("The card processor could not complete this just now. Please try again in a few minutes."),
    "details_expired": N_("The card details expired before they reached the processor. Please enter them again."),
    "gateway_refused": N_("This card could not be saved just now. Please try again later or contact us."),
    "no_details": N_("The card details did not arrive. Please enter them again."),
    "try_again": N_("Your cards changed while this one was being saved. Please enter it again."),
    "already_default": N_("That card is already your default card, so nothing changed. Please enter a different card."),
    "remove_refused": N_(
        "The card processor did not let us remove this card just now, so it is still on file. Please try again later."
    ),
}
"""Error codes to the sentences customers see. Codes whose sentence names a card, a limit or a
reason (``duplicate``, ``limit``, ``expired_default``, ``card_required``) are worded by the page
from what is on file and in the merchant's settings."""

REFUSALS: dict[str, str] = {
    "add_not_allowed": N_("Adding cards is not available here. Please contact the merchant."),
    "remove_not_allowed": N_("Removing cards is not available here. Please contact the merchant."),
    "not_set_up": N_("Card payments are not set up for this merchant yet. Please contact them for help."),
}
"""Refusals of what the pages never offer (the settings forbid it, or there is no gateway): these
are answered directly (403, 503), not through a redirect, so no page takes them as ``?error=``."""

_BY_CODE: dict[int, str] = {
    202: "insufficient_funds",
    203: "over_limit",
    220: "card_details",
    221: "unknown_bank",
    222: "unknown_card",
    223: "card_expired",
    224: "expiry_invalid",
    225: "cvv_mismatch",
    250: "bank_declined",
    251: "bank_declined",
    252: "bank_declined",
    253: "bank_declined",
    461: "card_type",
}

GATEWAY_REJECTION = 300
"""NMI's "rejected by the gateway": a bad payment token, but also account or request problems."""


def decline_code(response: GatewayResponse) -> str:
    """The :data:`ERRORS` code explaining a refused card, without internal details."""
    if response.response_code in _BY_CODE:
        return _BY_CODE[response.response_code]
    if response.response_code == GATEWAY_REJECTION:
        return "details_expired" if "token" in response.response_text.lower() else "gateway_refused"
    if response.outcome == "error":
        return "processor"
    return "declined"


def error_text(code: str) -> str:
    """The sentence of an :data:`ERRORS` or :data:`REFUSALS` code in the current language (an unknown code as is)."""
    sentence = ERRORS.get(code) or REFUSALS.get(code)
    return _(sentence) if sentence else code


def limit_message(merchant: MerchantView, *, max_cards: int, allow_remove: bool) -> str:
    """The card limit, and what the customer can do about it under the merchant's settings."""
    limit = ngettext(
        "You can keep up to %(count)s card on file.", "You can keep up to %(count)s cards on file.", max_cards
    ) % {"count": max_cards}
    return f"{limit} {limit_advice(merchant, allow_remove=allow_remove)}"


def limit_advice(merchant: MerchantView, *, allow_remove: bool) -> str:
    """How to make room for another card: remove one, or ask the merchant when removing is off."""
    if allow_remove:
        return _("Remove one to add another.")
    if merchant.brand.support_email:
        return _("To add another, please contact %(merchant)s at %(email)s.") % {
            "merchant": merchant.name,
            "email": merchant.brand.support_email,
        }
    return _("To add another, please contact %(merchant)s.") % {"merchant": merchant.name}


def duplicate_message(description: str) -> str:
    """A card entered again that is already on file (``description``: "Visa ending in 4242")."""
    return _("%(card)s is already on file, so it was not added again.") % {"card": description}


def expired_default_message(description: str, *, can_add: bool) -> str:
    """Why an expired card cannot become the default (``description``: "Visa ending in 4242")."""
    message = _("%(card)s has expired, so it cannot be your default card.") % {"card": description}
    if not can_add:
        return message
    advice = _("Add a new card instead.")
    return f"{message} {advice}"


def card_required_message(reason: str, merchant: MerchantView, allow_add: bool, max_cards: int) -> str:
    """Why the only card stays (``reason``: "Your Monthly Bread Box subscription"), and what to do."""
    if not allow_add:
        advice = _("Please contact %(merchant)s to change it.") % {"merchant": merchant.name}
    elif max_cards > 1:
        advice = _("Add another card first, then remove this one.")
    else:
        advice = _("You can replace it with another card instead.")
    message = _("%(reason)s needs a card on file, so this card, your only one, cannot be removed.") % {"reason": reason}
    return f"{message} {advice}"
