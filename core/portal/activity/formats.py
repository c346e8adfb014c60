"""How activity lines write money and dates: the merchant's time zone, the customer's locale."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton
from babel.numbers import format_currency

from portal.billing.money import exponent, format_money


@lru_cache(maxsize=64)
def _whole_pattern(locale: str) -> str:
    """The locale's currency pattern without fraction digits (``¤#,##0``)."""
    pattern = Locale.parse(locale).currency_formats["standard"].pattern
    return re.sub(r"\.[0#]+", "", pattern)


@lru_cache(maxsize=4096)
def _money(amount: int, currency: str, locale: str) -> str:
    places = exponent(currency)
    if places and amount % 10**places == 0:
        whole = Decimal(amount // 10**places)
        return str(
            format_currency(whole, currency, format=_whole_pattern(locale), locale=locale, currency_digits=False)
        )
    return format_money(amount, currency, locale)


@lru_cache(maxsize=4096)
def _day(year: int, month: int, day: int, locale: str) -> str:
    return str(format_skeleton("MMMd", datetime(year, month, day), locale=locale))


class ActivityFormat:
    """Money and dates for activity lines; Babel's answers are cached (a feed repeats few of them)."""

    __slots__ = ("locale", "zone")

    def __init__(self, timezone: str, locale: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.locale = locale.replace("-", "_")

    def money(self, amount: int, currency: str) -> str:
        """``$1,240`` for whole amounts, ``$39.50`` otherwise, in the customer's locale."""
        return _money(amount, currency, self.locale)

    def date(self, at: datetime) -> str:
        """The day of ``at`` in the merchant's time zone, short (``Apr 4``), in the customer's locale."""
        local = at.astimezone(self.zone)
        return _day(local.year, local.month, local.day, self.locale)


def formats_for(timezone: str, locale: str) -> ActivityFormat:
    """Activity lines in the merchant's time zone and ``locale`` (the request's, which Babel always knows)."""
    return ActivityFormat(timezone, locale)
