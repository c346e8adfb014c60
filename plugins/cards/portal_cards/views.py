"""Cards as pages show them: brand names, masked numbers, expiry and its warnings."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import msgspec

from portal.sdk import MerchantView, expires_on
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


class CardView(msgspec.Struct, frozen=True, kw_only=True):
    """A card ready for a template; every string is pre-formatted."""

    id: str
    brand: str
    brand_name: str
    last4: str
    description: str
    """``Visa ending in 4242``."""
    expiry: str
    """``12/2028``."""
    is_default: bool
    expired: bool
    expiring_soon: bool


def brand_name(brand: str) -> str:
    """The brand as customers know it."""
    return BRANDS.get(brand.lower(), "Card")


def expiry_day(card: StoredCard) -> date:
    """The last day the card is valid (cards expire at the end of their expiry month)."""
    return expires_on(card)


def today_for(merchant: MerchantView, now: datetime) -> date:
    """Today in the merchant's time zone."""
    return now.astimezone(ZoneInfo(merchant.timezone)).date()


def card_view(card: StoredCard, today: date, expiring_soon_days: int) -> CardView:
    """A stored card as a page shows it."""
    last_day = expiry_day(card)
    expired = last_day < today
    name = brand_name(card.brand)
    return CardView(
        id=card.id,
        brand=card.brand if card.brand in BRANDS else "card",
        brand_name=name,
        last4=card.last4,
        description=f"{name} ending in {card.last4}",
        expiry=f"{card.exp_month:02d}/{card.exp_year}",
        is_default=card.is_default,
        expired=expired,
        expiring_soon=not expired and (last_day - today).days <= expiring_soon_days,
    )
