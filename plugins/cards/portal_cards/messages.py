"""What customers are told when the gateway refuses a card."""

from __future__ import annotations

from portal.payments.gateway import GatewayResponse

_BY_CODE: dict[int, str] = {
    202: "Your bank declined this card for insufficient funds. Please use another card.",
    203: "Your bank declined this card: it is over its limit. Please use another card.",
    220: "The card details were not accepted. Please check them and try again.",
    221: "The card's bank was not recognised. Please use another card.",
    222: "Your bank has no record of this card number. Please check it or use another card.",
    223: "This card has expired. Please use another card.",
    224: "The expiry date is not valid. Please check it and try again.",
    225: "The security code does not match. Please check it and try again.",
    250: "Your bank declined this card. Please contact your bank or use another card.",
    251: "Your bank declined this card. Please contact your bank or use another card.",
    252: "Your bank declined this card. Please contact your bank or use another card.",
    253: "Your bank declined this card. Please contact your bank or use another card.",
    461: "This type of card is not accepted here. Please use another card.",
}

GENERIC_DECLINE = "Your bank declined this card. Please try another card or contact your bank."
PROCESSOR_TROUBLE = "The card processor could not complete this just now. Please try again in a few minutes."
CARD_DETAILS_EXPIRED = "The card details expired before they reached the processor. Please enter them again."
GATEWAY_REFUSED = "This card could not be saved just now. Please try again later or contact us."

GATEWAY_REJECTION = 300
"""NMI's "rejected by the gateway": a bad payment token, but also account or request problems."""


def decline_message(response: GatewayResponse) -> str:
    """A sentence for the customer explaining a refused card, without internal details."""
    if response.response_code in _BY_CODE:
        return _BY_CODE[response.response_code]
    if response.response_code == GATEWAY_REJECTION:
        return CARD_DETAILS_EXPIRED if "token" in response.response_text.lower() else GATEWAY_REFUSED
    if response.outcome == "error":
        return PROCESSOR_TROUBLE
    return GENERIC_DECLINE
