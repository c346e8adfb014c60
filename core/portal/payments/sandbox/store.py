"""The sandbox gateway's rows: payment tokens, vault records and sales.

Every query names the merchant, so one merchant's tokens and vault ids read as unknown to
another; row-level security keeps other ISOs out. Callers run inside the merchant's tenant
transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from portal.db.engine import fetch, json_value
from portal.ids import new_id
from portal.payments.gateway import Card, GatewayResponse, Money
from portal.payments.sandbox.cards import Behaviour, CardDetails

TOKEN_PREFIX = "sbx_tok_"  # noqa: S105 - a prefix, not a secret


class StoredCard:
    """A tokenized or vaulted card: its displayable details and test-card behaviour."""

    __slots__ = ("behaviour", "card")

    def __init__(self, row: dict[str, Any]) -> None:
        self.card = Card(
            brand=str(row["brand"]),
            last4=str(row["last4"]),
            exp_month=int(row["exp_month"]),
            exp_year=int(row["exp_year"]),
        )
        self.behaviour = Behaviour(row["behaviour"])


def token_hash(token: str) -> bytes:
    """What the table keeps of a payment token."""
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    """A fresh, unguessable payment token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


def new_vault_id() -> str:
    """A customer vault id: ``sbx_cv_...``."""
    return "sbx_" + new_id("cv")


def new_transaction_id() -> str:
    """A transaction id: ``sbx_txn_...``."""
    return "sbx_" + new_id("txn")


async def insert_token(
    iso_id: str, merchant_id: str, details: CardDetails, *, now: datetime, expires_at: datetime
) -> str:
    """Store a token for a checked card and return it; expired tokens of the merchant are dropped."""
    await fetch("DELETE FROM portal_sandbox_token WHERE merchant_id = $1 AND expires_at < $2", merchant_id, now)
    token = new_token()
    await fetch(
        """
        INSERT INTO portal_sandbox_token
            (token_hash, iso_id, merchant_id, brand, last4, exp_month, exp_year, behaviour, created_at, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        """,
        token_hash(token),
        iso_id,
        merchant_id,
        details.brand,
        details.last4,
        details.exp_month,
        details.exp_year,
        details.behaviour.value,
        now,
        expires_at,
    )
    return token


async def consume_token(merchant_id: str, token: str, now: datetime) -> StoredCard | None:
    """Use up a token of this merchant; None when it is unknown, already used or expired."""
    rows = await fetch(
        """
        UPDATE portal_sandbox_token SET used_at = $3
         WHERE token_hash = $1 AND merchant_id = $2 AND used_at IS NULL AND expires_at > $3
        RETURNING brand, last4, exp_month, exp_year, behaviour
        """,
        token_hash(token),
        merchant_id,
        now,
    )
    return StoredCard(rows[0]) if rows else None


async def vault_exists(merchant_id: str, vault_id: str, *, lock: bool = False) -> bool:
    """True when the merchant has this customer vault record (``lock`` holds it until commit)."""
    rows = await fetch(
        "SELECT 1 FROM portal_sandbox_vault WHERE merchant_id = $1 AND vault_id = $2" + (" FOR UPDATE" if lock else ""),
        merchant_id,
        vault_id,
    )
    return bool(rows)


async def insert_vault(iso_id: str, merchant_id: str, vault_id: str, customer_id: str, email: str, name: str) -> None:
    """Create a customer vault record."""
    await fetch(
        "INSERT INTO portal_sandbox_vault (iso_id, merchant_id, vault_id, customer_id, email, name) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        iso_id,
        merchant_id,
        vault_id,
        customer_id,
        email,
        name,
    )


async def stored_card(merchant_id: str, vault_id: str, billing_id: str) -> StoredCard | None:
    """The card behind a billing id of a vault record."""
    rows = await fetch(
        "SELECT brand, last4, exp_month, exp_year, behaviour FROM portal_sandbox_billing "
        "WHERE merchant_id = $1 AND vault_id = $2 AND billing_id = $3",
        merchant_id,
        vault_id,
        billing_id,
    )
    return StoredCard(rows[0]) if rows else None


async def insert_billing(
    iso_id: str, merchant_id: str, vault_id: str, billing_id: str, card: StoredCard, now: datetime
) -> bool:
    """Add a billing id to a vault record; False when the vault already has that billing id."""
    rows = await fetch(
        """
        INSERT INTO portal_sandbox_billing
            (iso_id, merchant_id, vault_id, billing_id, brand, last4, exp_month, exp_year, behaviour,
             created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
        ON CONFLICT (merchant_id, vault_id, billing_id) DO NOTHING
        RETURNING 1
        """,
        iso_id,
        merchant_id,
        vault_id,
        billing_id,
        card.card.brand,
        card.card.last4,
        card.card.exp_month,
        card.card.exp_year,
        card.behaviour.value,
        now,
    )
    return bool(rows)


async def replace_billing(merchant_id: str, vault_id: str, billing_id: str, card: StoredCard, now: datetime) -> bool:
    """Put another card behind a billing id; False when there is no such billing id."""
    rows = await fetch(
        """
        UPDATE portal_sandbox_billing
           SET brand = $4, last4 = $5, exp_month = $6, exp_year = $7, behaviour = $8, updated_at = $9
         WHERE merchant_id = $1 AND vault_id = $2 AND billing_id = $3
        RETURNING 1
        """,
        merchant_id,
        vault_id,
        billing_id,
        card.card.brand,
        card.card.last4,
        card.card.exp_month,
        card.card.exp_year,
        card.behaviour.value,
        now,
    )
    return bool(rows)


async def delete_billing(merchant_id: str, vault_id: str, billing_id: str) -> bool:
    """Remove one billing id; False when there is no such billing id."""
    rows = await fetch(
        "DELETE FROM portal_sandbox_billing WHERE merchant_id = $1 AND vault_id = $2 AND billing_id = $3 RETURNING 1",
        merchant_id,
        vault_id,
        billing_id,
    )
    return bool(rows)


async def delete_vault(merchant_id: str, vault_id: str) -> None:
    """Remove a customer vault record with every billing id it still has."""
    await fetch("DELETE FROM portal_sandbox_vault WHERE merchant_id = $1 AND vault_id = $2", merchant_id, vault_id)


def _response(row: dict[str, Any]) -> GatewayResponse:
    return GatewayResponse(
        outcome=row["outcome"],
        response_code=int(row["response_code"]),
        response_text=str(row["response_text"]),
        transaction_id=str(row["id"]),
        authorization_code=row["authorization_code"],
        order_id=str(row["order_id"]),
    )


async def approved_sale(merchant_id: str, order_id: str) -> GatewayResponse | None:
    """The approved sale of this order id, if there is one."""
    rows = await fetch(
        "SELECT * FROM portal_sandbox_transaction WHERE merchant_id = $1 AND order_id = $2 AND outcome = 'approved'",
        merchant_id,
        order_id,
    )
    return _response(rows[0]) if rows else None


async def lock_orders(merchant_id: str, order_ids: list[str]) -> None:
    """Serialise sales of these order ids until the transaction ends (locks taken in sorted order)."""
    keys = sorted({f"sandbox-sale:{merchant_id}:{order_id}" for order_id in order_ids})
    await fetch(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (SELECT k FROM unnest($1::text[]) k ORDER BY k) s",
        keys,
    )


async def approved_sales_and_cards(
    merchant_id: str, requests: list[tuple[str, str, str]]
) -> list[tuple[GatewayResponse | None, StoredCard | None]]:
    """Per (order id, vault id, billing id): the order's approved sale, if any, and the stored card, if any."""
    rows = await fetch(
        """
        SELECT to_jsonb(t) AS sale, to_jsonb(b) AS card
          FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r(order_id, vault_id, billing_id, n)
          LEFT JOIN portal_sandbox_transaction t
                 ON t.merchant_id = $1 AND t.order_id = r.order_id AND t.outcome = 'approved'
          LEFT JOIN LATERAL (
                SELECT brand, last4, exp_month, exp_year, behaviour FROM portal_sandbox_billing
                 WHERE merchant_id = $1 AND vault_id = r.vault_id AND billing_id = r.billing_id) b ON true
         ORDER BY r.n
        """,
        merchant_id, [r[0] for r in requests], [r[1] for r in requests], [r[2] for r in requests],
    )  # fmt: skip
    found = []
    for row in rows:
        sale, card = json_value(row["sale"]), json_value(row["card"])
        found.append(((_response(sale) if sale else None), (StoredCard(card) if card else None)))
    return found


async def record_sales(
    iso_id: str, merchant_id: str, sales: list[tuple[str, str, Money, GatewayResponse]]
) -> list[GatewayResponse | None]:
    """Record sales ((vault id, billing id, amount, result) each) in one statement.

    Per sale, in order: the recorded sale, or ``None`` when its order already has an approved sale
    (which stands instead).
    """
    for *_, result in sales:
        assert result.transaction_id is not None and result.order_id is not None
    rows = await fetch(
        """
        INSERT INTO portal_sandbox_transaction
            (id, iso_id, merchant_id, order_id, vault_id, billing_id, amount_minor, currency,
             outcome, response_code, response_text, authorization_code)
        SELECT id, $1, $2, order_id, vault_id, billing_id, amount_minor, currency, outcome, response_code,
               response_text, authorization_code
          FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[],
                      $10::int[], $11::text[], $12::text[])
               AS s(id, order_id, vault_id, billing_id, amount_minor, currency, outcome, response_code,
                    response_text, authorization_code)
        ON CONFLICT (merchant_id, order_id) WHERE outcome = 'approved' DO NOTHING
        RETURNING *
        """,
        iso_id, merchant_id, [r.transaction_id for *_, r in sales], [r.order_id for *_, r in sales],
        [vault for vault, *_ in sales], [billing for _, billing, *_ in sales],
        [amount.minor_units for _, _, amount, _ in sales], [amount.currency for _, _, amount, _ in sales],
        [r.outcome for *_, r in sales], [r.response_code for *_, r in sales], [r.response_text for *_, r in sales],
        [r.authorization_code for *_, r in sales],
    )  # fmt: skip
    recorded = {row["id"]: _response(row) for row in rows}
    return [recorded.get(str(result.transaction_id)) for *_, result in sales]
