"""Money: minor units by Babel's currency precision, formatting, and rounding an exact fraction once."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from portal.billing.errors import BillingError
from portal.billing.money import check_currency, exponent, format_money, from_decimal, round_half_up, to_decimal


def test_exponents_come_from_the_currency() -> None:
    assert [exponent(code) for code in ("USD", "EUR", "JPY", "KWD")] == [2, 2, 0, 3]


def test_minor_units_and_decimals() -> None:
    assert to_decimal(342000, "USD") == Decimal("3420.00")
    assert to_decimal(1000, "JPY") == Decimal("1000")
    assert from_decimal("39.00", "USD") == 3900
    assert from_decimal(Decimal("1000"), "JPY") == 1000
    with pytest.raises(BillingError) as refused:
        from_decimal("10.5", "JPY")
    assert refused.value.code == "invalid_amount"


def test_formatting_for_people() -> None:
    assert format_money(342000, "USD", "en_US") == "$3,420.00"
    assert format_money(3900, "EUR", "de-DE") == "39,00\xa0€"
    assert format_money(1000, "JPY", "ja_JP") == "￥1,000"


@pytest.mark.parametrize("code", ["usd", "XXY", "US", "EURO", ""])
def test_unknown_currencies_are_refused(code: str) -> None:
    with pytest.raises(BillingError) as refused:
        check_currency(code)
    assert refused.value.code == "invalid_currency"


def test_rounding_halves_away_from_zero() -> None:
    assert [round_half_up(Fraction(n, 2)) for n in (1, 3, -1, -3)] == [1, 2, -1, -2]
    assert round_half_up(Fraction(1333, 3)) == 444 and round_half_up(Fraction(-2, 3)) == -1
