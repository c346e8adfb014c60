"""Money: integer minor units of an ISO 4217 currency; never a float.

The number of minor units per major unit (the exponent) comes from Babel's currency data:
2 for USD and EUR, 0 for JPY, 3 for KWD.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

from portal.billing.errors import BillingError

_CODE = re.compile(r"^[A-Z]{3}$")


@cache
def _known() -> frozenset[str]:
    return frozenset(list_currencies())


def check_currency(currency: str) -> str:
    """``currency`` if it is a known ISO 4217 code in upper case; ``BillingError('invalid_currency')`` if not."""
    if not _CODE.match(currency) or currency not in _known():
        raise BillingError("invalid_currency", f"{currency!r} is not an ISO 4217 currency code")
    return currency


def exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency`` (0 for JPY, 2 for USD)."""
    return int(get_currency_precision(check_currency(currency)))


def to_decimal(amount: int, currency: str) -> Decimal:
    """Minor units as an exact decimal amount of major units (``1050, 'USD'`` → ``10.50``)."""
    places = exponent(currency)
    return Decimal(amount).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def from_decimal(amount: Decimal | str, currency: str) -> int:
    """Major units (a ``Decimal`` or its text) as minor units; refuses more digits than the currency has."""
    value = Decimal(amount)
    minor = value.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise BillingError("invalid_amount", f"{amount} has more decimals than {currency} allows")
    return int(minor)


def round_half_up(value: Fraction) -> int:
    """Round an exact fraction of minor units to the nearest unit, halves away from zero."""
    magnitude = abs(value)
    whole = int(magnitude + Fraction(1, 2))
    return whole if value >= 0 else -whole


def format_money(amount: int, currency: str, locale: str) -> str:
    """Minor units for people, in ``locale`` (``format_money(342000, 'USD', 'en_US')`` → ``$3,420.00``)."""
    return str(format_currency(to_decimal(amount, currency), currency, locale=locale.replace("-", "_")))
