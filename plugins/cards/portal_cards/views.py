"""Cards as pages show them: brand names and marks, masked numbers, expiry and its warnings."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import msgspec
from babel import Locale, UnknownLocaleError
from babel.dates import format_date

from portal.sdk import MerchantView, current_locale, expires_on
from portal.sdk import gettext as _
from portal_cards.store import StoredCard

BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
    "maestro": "Maestro",
}

MARKS = frozenset({"visa", "mastercard", "amex", "discover"})
"""Brands with a mark of their own in ``static/brands/``; every other card shows ``card.svg``."""


class CardView(msgspec.Struct, frozen=True, kw_only=True):
    """A card ready for a template; every string is pre-formatted."""

    id: str
    brand: str
    brand_name: str
    mark: str
    """The brand mark's file in ``static/brands/``: ``visa.svg``, or ``card.svg`` for other brands."""
    last4: str
    description: str
    """``Visa ending in 4242``."""
    expiry: str
    """``12/2028`` (``12.2028`` in German): the month and year the card is valid to."""
    is_default: bool
    expired: bool
    expiring_soon: bool


def brand_name(brand: str) -> str:
    """The brand as customers know it (brand names are not translated; an unknown brand is a "Card")."""
    return BRANDS.get(brand.lower()) or _("Card")


def describe(brand: str, last4: str) -> str:
    """``Visa ending in 4242``, in the current language."""
    return _("%(brand)s ending in %(last4)s") % {"brand": brand_name(brand), "last4": last4}


def expiry_day(card: StoredCard) -> date:
    """The last day the card is valid (cards expire at the end of their expiry month)."""
    return expires_on(card)


def expiry_text(last_day: date) -> str:
    """The card's expiry month in the current locale, the month in two digits as cards print it.

    ``01/2029``; ``01.2029`` in German.
    """
    try:
        locale = Locale.parse(current_locale())
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse("en")
    skeleton = locale.datetime_skeletons.get("yMM")
    pattern = re.sub(r"M+", "MM", skeleton.pattern) if skeleton is not None else "MM/y"
    return format_date(last_day, pattern, locale=locale)


def today_for(merchant: MerchantView, now: datetime) -> date:
    """Today in the merchant's time zone."""
    return now.astimezone(ZoneInfo(merchant.timezone)).date()


def card_view(card: StoredCard, today: date, expiring_soon_days: int) -> CardView:
    """A stored card as a page shows it."""
    last_day = expiry_day(card)
    expired = last_day < today
    brand = card.brand.lower()
    return CardView(
        id=card.id,
        brand=brand if brand in BRANDS else "card",
        brand_name=brand_name(brand),
        mark=f"{brand if brand in MARKS else 'card'}.svg",
        last4=card.last4,
        description=describe(brand, card.last4),
        expiry=expiry_text(last_day),
        is_default=card.is_default,
        expired=expired,
        expiring_soon=not expired and (last_day - today).days <= expiring_soon_days,
    )
