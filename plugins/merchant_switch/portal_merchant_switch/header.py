"""The header line's count, cached per process for a few seconds so most pages query nothing.

Keyed by (ISO, normalised email), the entry holds the ids of the merchants where the customer
has a record with switching on; a page subtracts its own merchant. An entry lives
:data:`TTL` seconds, so a change (a merchant turning switching on or off, a customer added or
renamed) shows in the header line at most that late. The switch page and the switch itself
always query afresh and refresh the entry.
"""

from __future__ import annotations

import time

from portal.sdk import tenant_transaction
from portal_merchant_switch.siblings import Sibling, accounts

TTL = 30.0
"""Seconds an entry is trusted: the header line's staleness bound."""
MAX_ENTRIES = 50_000

_entries: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}


def remember(iso_id: str, email_normalized: str, found: list[Sibling]) -> None:
    """Store a fresh lookup."""
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[(iso_id, email_normalized)] = (time.monotonic() + TTL, frozenset(s.merchant_id for s in found))


async def warm(iso_id: str, email_normalized: str) -> None:
    """Make sure a live entry exists: one query on a miss, none on a hit."""
    entry = _entries.get((iso_id, email_normalized))
    if entry is not None and entry[0] > time.monotonic():
        return
    async with tenant_transaction(iso_id):
        remember(iso_id, email_normalized, await accounts(iso_id, email_normalized))


def other_count(iso_id: str, email_normalized: str, merchant_id: str) -> int:
    """How many other merchants the cached entry lists (0 without an entry, or if this merchant is not in it)."""
    entry = _entries.get((iso_id, email_normalized))
    if entry is None or merchant_id not in entry[1]:
        return 0
    return len(entry[1]) - 1


def forget() -> None:
    """Drop every entry (tests, and a process that knows tenants changed)."""
    _entries.clear()
