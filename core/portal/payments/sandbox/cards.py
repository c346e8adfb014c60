"""Test cards, brand detection and the field checks the hosted fields run before tokenizing.

Numbers, expiry dates and security codes are checked here and forgotten: only the brand, the
last four digits, the expiry and the test-card behaviour go on. Only the test cards below are
accepted, so a real card's number is refused rather than tokenized.
"""

from __future__ import annotations

import enum
import re
from datetime import date

import msgspec


class Behaviour(enum.StrEnum):
    """What the sandbox does with a card when it is verified (vault add) and charged (sale)."""

    APPROVE = "approve"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    PROCESSOR_ERROR = "processor_error"
    DECLINE_AFTER_ATTACH = "decline_after_attach"
    STOP_RECURRING_AFTER_ATTACH = "stop_recurring_after_attach"


TEST_CARDS: dict[str, Behaviour] = {
    "4111111111111111": Behaviour.APPROVE,
    "4000000000000002": Behaviour.INSUFFICIENT_FUNDS,
    "4000000000000069": Behaviour.EXPIRED_CARD,
    "4000000000000119": Behaviour.PROCESSOR_ERROR,
    "4000000000000341": Behaviour.DECLINE_AFTER_ATTACH,
    "4000000000000259": Behaviour.STOP_RECURRING_AFTER_ATTACH,
    "4242424242424242": Behaviour.APPROVE,
    "4012888888881881": Behaviour.APPROVE,
    "5555555555554444": Behaviour.APPROVE,
    "5105105105105100": Behaviour.APPROVE,
    "2223003122003222": Behaviour.APPROVE,
    "378282246310005": Behaviour.APPROVE,
    "371449635398431": Behaviour.APPROVE,
    "6011111111111117": Behaviour.APPROVE,
    "6011000990139424": Behaviour.APPROVE,
    "3566002020360505": Behaviour.APPROVE,
}
"""The only numbers the sandbox accepts: the six of its own, then well-known public test numbers."""

FIELDS = ("ccnumber", "ccexp", "cvv")
"""The Collect.js field names."""

MESSAGES = {
    "ccnumber_missing": "Card number is required",
    "ccnumber_invalid": "Card number is invalid",
    "ccnumber_not_test": "Use a test card number: this is a test gateway",
    "ccexp_missing": "Expiration date is required",
    "ccexp_invalid": "Expiration date is invalid",
    "ccexp_past": "Card is expired",
    "cvv_missing": "CVV is required",
    "cvv_invalid": "CVV is invalid",
}
"""Field-level messages, the same the hosted fields show before asking the server."""

_EXPIRY = re.compile(r"^(\d{1,2})\s*[/-]?\s*(\d{2}|\d{4})$")


class CardDetails(msgspec.Struct, frozen=True, kw_only=True):
    """A checked card: what the sandbox keeps of it, plus the masked number for the callback."""

    brand: str
    bin: str
    last4: str
    masked: str
    exp_month: int
    exp_year: int
    behaviour: Behaviour

    @property
    def exp(self) -> str:
        """The expiry as Collect.js reports it: ``MMYY``."""
        return f"{self.exp_month:02d}{self.exp_year % 100:02d}"


class InvalidFieldsError(Exception):
    """Fields that did not pass; ``errors`` maps a field name to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def digits_of(value: str) -> str:
    """The number without the spaces and dashes people type; other characters are kept."""
    return re.sub(r"[\s-]", "", value)


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check every card number passes."""
    if not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    """The brand from the leading digits: visa, mastercard, amex, discover, else ``card``."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    two, four = int(number[:2] or 0), int(number[:4] or 0)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return "discover"
    return "card"


def mask(number: str) -> str:
    """The first six and last four digits with stars between, as Collect.js shows a card."""
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def parse_expiry(value: str) -> tuple[int, int] | None:
    """``MM / YY``, ``MM/YY``, ``MMYY`` or ``MM/YYYY`` to (month, four-digit year); None if malformed."""
    found = _EXPIRY.match(value.strip())
    if found is None:
        return None
    month, year = int(found.group(1)), int(found.group(2))
    if not 1 <= month <= 12:
        return None
    return month, (2000 + year if year < 100 else year)


def check_card(ccnumber: str, ccexp: str, cvv: str | None, *, today: date, cvv_required: bool) -> CardDetails:
    """Check the three fields like the hosted fields do; raise :class:`InvalidFieldsError` listing each bad one.

    A well-formed number that is not in :data:`TEST_CARDS` gets its own message. ``cvv`` None
    means the form had no security code field; an empty one is checked only when ``cvv_required``.
    """
    errors: dict[str, str] = {}
    number = digits_of(ccnumber)
    well_formed = 12 <= len(number) <= 19 and luhn_valid(number)
    if not number:
        errors["ccnumber"] = MESSAGES["ccnumber_missing"]
    elif not well_formed:
        errors["ccnumber"] = MESSAGES["ccnumber_invalid"]
    elif number not in TEST_CARDS:
        errors["ccnumber"] = MESSAGES["ccnumber_not_test"]
    expiry = parse_expiry(ccexp)
    if not ccexp.strip():
        errors["ccexp"] = MESSAGES["ccexp_missing"]
    elif expiry is None:
        errors["ccexp"] = MESSAGES["ccexp_invalid"]
    elif (expiry[1], expiry[0]) < (today.year, today.month):
        errors["ccexp"] = MESSAGES["ccexp_past"]
    elif expiry[1] > today.year + 20:
        errors["ccexp"] = MESSAGES["ccexp_invalid"]
    brand = brand_of(number) if well_formed else "card"
    code = (cvv or "").strip()
    if not code:
        if cvv is not None and cvv_required:
            errors["cvv"] = MESSAGES["cvv_missing"]
    elif not code.isdigit() or len(code) not in ((4,) if brand == "amex" else (3,)):
        errors["cvv"] = MESSAGES["cvv_invalid"]
    if errors:
        raise InvalidFieldsError(errors)
    assert expiry is not None
    return CardDetails(
        brand=brand,
        bin=number[:6],
        last4=number[-4:],
        masked=mask(number),
        exp_month=expiry[0],
        exp_year=expiry[1],
        behaviour=TEST_CARDS[number],
    )
