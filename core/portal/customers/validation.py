"""Per-country checks of billing details: country codes, postal codes and EU VAT numbers."""

from __future__ import annotations

import re
from functools import cache

from babel import Locale

NOT_COUNTRIES = frozenset({"EU", "EZ", "QO", "QU", "UN", "XA", "XB", "ZZ"})
"""Two-letter territory codes of CLDR that are not countries (regions, pseudo-locales, unknown)."""

POSTAL_CODES: dict[str, tuple[re.Pattern[str], str]] = {
    "US": (re.compile(r"^\d{5}(?:-\d{4})?$"), "a US ZIP code: 5 digits, or 5+4 (12345-6789)"),
    "GB": (re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}$"), "a UK postcode such as SW1A 1AA"),
    "CA": (
        re.compile(r"^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] \d[ABCEGHJ-NPRSTV-Z]\d$"),
        "a Canadian postal code such as K1A 0B1",
    ),
    "DE": (re.compile(r"^\d{5}$"), "5 digits"),
    "FR": (re.compile(r"^\d{5}$"), "5 digits"),
    "ES": (re.compile(r"^\d{5}$"), "5 digits"),
    "IT": (re.compile(r"^\d{5}$"), "5 digits"),
    "NL": (re.compile(r"^\d{4} ?[A-Z]{2}$"), "4 digits and 2 letters (1234 AB)"),
    "AU": (re.compile(r"^\d{4}$"), "4 digits"),
}
"""Postal code shapes of the countries checked closely; others get :data:`GENERIC_POSTAL_CODE`."""
GENERIC_POSTAL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9 -]{0,18}[A-Z0-9]$|^[A-Z0-9]$")

EU_VAT: dict[str, str] = {
    "AT": r"U\d{8}",
    "BE": r"[01]\d{9}",
    "BG": r"\d{9,10}",
    "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}",
    "DE": r"\d{9}",
    "DK": r"\d{8}",
    "EE": r"\d{9}",
    "EL": r"\d{9}",
    "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"\d{8}",
    "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"\d{11}",
    "HU": r"\d{8}",
    "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]",
    "IT": r"\d{11}",
    "LT": r"\d{9}|\d{12}",
    "LU": r"\d{8}",
    "LV": r"\d{11}",
    "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}",
    "PL": r"\d{10}",
    "PT": r"\d{9}",
    "RO": r"\d{2,10}",
    "SE": r"\d{12}",
    "SI": r"\d{8}",
    "SK": r"\d{10}",
}
"""VAT number bodies by VAT prefix (Greece's prefix is EL, not GR), as VIES documents them."""
EU_COUNTRIES = frozenset(code if code != "EL" else "GR" for code in EU_VAT)
GENERIC_TAX_ID = re.compile(r"^[A-Z0-9][A-Z0-9 ./-]{0,38}[A-Z0-9]$|^[A-Z0-9]$")


@cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes (from CLDR, through Babel)."""
    codes = [str(code) for code in Locale("en").territories]
    return frozenset(code for code in codes if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES)


def postal_code_problem(country: str, postal_code: str) -> str | None:
    """Why ``postal_code`` (upper-cased, trimmed) is not a postal code of ``country``; ``None`` if it is."""
    known = POSTAL_CODES.get(country)
    if known is not None:
        pattern, shape = known
        return None if pattern.fullmatch(postal_code) else f"is not {shape}"
    return None if GENERIC_POSTAL_CODE.fullmatch(postal_code) else "is not a postal code"


def normalize_postal_code(country: str | None, postal_code: str) -> str:
    """Upper-cased, with the space UK and Canadian codes carry before their last three characters."""
    value = " ".join(postal_code.upper().split())
    if country in {"GB", "CA"} and " " not in value and len(value) > 3:
        value = f"{value[:-3]} {value[-3:]}"
    return value


def normalize_tax_id(tax_id: str) -> str:
    """Upper-cased, with runs of spaces made one (an EU VAT number's compact form comes from :func:`tax_id_problem`)."""
    return " ".join(tax_id.upper().split())


def tax_id_problem(country: str | None, tax_id: str) -> tuple[str, str | None]:
    """The stored form of ``tax_id`` and why it is refused (``None``: accepted).

    For an EU country the id must be a VAT number of that country, prefixed (``DE123456789``).
    """
    if country in EU_COUNTRIES:
        compact = re.sub(r"[\s.\-]", "", tax_id.upper())
        prefix = "EL" if country == "GR" else country
        if not compact.startswith(prefix):
            return compact, f"is not a VAT number of {country}: it starts with {prefix}"
        if not re.fullmatch(EU_VAT[prefix], compact[2:]):
            return compact, f"is not a VAT number of {country} ({prefix} then its digits)"
        return compact, None
    value = normalize_tax_id(tax_id)
    return value, None if GENERIC_TAX_ID.fullmatch(value) else "is not a tax id (letters, digits, spaces, . / -)"
