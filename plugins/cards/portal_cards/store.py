"""Cards on file in the database. Every query is scoped to one merchant and one customer.

Row-level security keeps other ISOs out; these ``merchant_id``/``customer_id`` conditions keep
other merchants and other customers of the same ISO out, so a foreign id reads as missing.
Callers run inside the merchant's tenant transaction.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from portal.db.engine import fetch, transaction_lock

COLUMNS = "id, customer_id, gateway, vault_id, billing_id, brand, last4, exp_month, exp_year, is_default, created_at"


class StoredCard(msgspec.Struct, frozen=True, kw_only=True):
    """A card on file as stored: the vault reference and the displayable details."""

    id: str
    customer_id: str
    gateway: str
    vault_id: str
    billing_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    created_at: datetime


def _cards(rows: list[dict[str, object]]) -> list[StoredCard]:
    return [msgspec.convert(row, StoredCard) for row in rows]


async def cards_on_file(merchant_id: str, customer_id: str, *, lock: bool = False) -> list[StoredCard]:
    """The customer's cards, default first, then newest first; ``lock`` holds them for an update."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM cards_payment_method "
        "WHERE merchant_id = $1 AND customer_id = $2 AND removed_at IS NULL "
        "ORDER BY is_default DESC, created_at DESC, id DESC" + (" FOR UPDATE" if lock else ""),
        merchant_id,
        customer_id,
    )
    return _cards(rows)


async def removed_card(merchant_id: str, customer_id: str, card_id: str) -> StoredCard | None:
    """A card of the customer that was taken off file."""
    rows = await fetch(
        f"SELECT {COLUMNS} FROM cards_payment_method "
        "WHERE merchant_id = $1 AND customer_id = $2 AND id = $3 AND removed_at IS NOT NULL",
        merchant_id,
        customer_id,
        card_id,
    )
    return _cards(rows)[0] if rows else None


async def lock_customer(merchant_id: str, customer_id: str) -> None:
    """Serialise card changes of one customer until the transaction ends."""
    await transaction_lock("cards", merchant_id, customer_id)


async def insert_card(iso_id: str, merchant_id: str, card: StoredCard) -> None:
    """Store a card the gateway vaulted."""
    await fetch(
        """
        INSERT INTO cards_payment_method (id, iso_id, merchant_id, customer_id, gateway, vault_id, billing_id,
                                          brand, last4, exp_month, exp_year, is_default, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        """,
        card.id, iso_id, merchant_id, card.customer_id, card.gateway, card.vault_id, card.billing_id,
        card.brand, card.last4, card.exp_month, card.exp_year, card.is_default, card.created_at,
    )  # fmt: skip


async def clear_default(merchant_id: str, customer_id: str) -> None:
    """No card of the customer is the default any more."""
    await fetch(
        "UPDATE cards_payment_method SET is_default = false WHERE merchant_id = $1 AND customer_id = $2 AND is_default",
        merchant_id,
        customer_id,
    )


async def make_default(merchant_id: str, customer_id: str, card_id: str) -> None:
    """Make ``card_id`` the customer's only default card."""
    await clear_default(merchant_id, customer_id)
    await fetch(
        "UPDATE cards_payment_method SET is_default = true "
        "WHERE merchant_id = $1 AND customer_id = $2 AND id = $3 AND removed_at IS NULL",
        merchant_id,
        customer_id,
        card_id,
    )


async def mark_removed(merchant_id: str, customer_id: str, card_id: str) -> None:
    """Take a card off file (the row stays for the audit trail)."""
    await fetch(
        "UPDATE cards_payment_method SET removed_at = now(), is_default = false "
        "WHERE merchant_id = $1 AND customer_id = $2 AND id = $3 AND removed_at IS NULL",
        merchant_id,
        customer_id,
        card_id,
    )
