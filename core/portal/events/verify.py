"""Checking a merchant's audit chain: every record's ``seq``, ``prev_hash`` and ``hash`` recomputed."""

from __future__ import annotations

from typing import Any

import msgspec

from portal.db.engine import TenantScopeError, current_iso, fetch
from portal.events.chain import CHAINED_FIELDS, GENESIS, chain_hash

BATCH = 1000
"""Records read per query; memory stays constant whatever the chain's length."""


class BrokenLink(msgspec.Struct, frozen=True, kw_only=True):
    """The first record whose place in the chain does not hold."""

    seq: int
    id: str
    problem: str


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of checking one merchant's chain."""

    merchant_id: str
    records: int
    """Records checked (up to and including the broken one)."""
    head_seq: int
    """``seq`` of the last record checked (0 when the chain is empty)."""
    head_hash: str
    """``hash`` of the last intact record (``GENESIS`` when there is none)."""
    broken: BrokenLink | None = None

    @property
    def ok(self) -> bool:
        """True when every record checked out."""
        return self.broken is None


def _problem(row: dict[str, Any], expected_seq: int, prev_hash: str) -> str | None:
    if row["seq"] != expected_seq:
        return f"seq {row['seq']} follows seq {expected_seq - 1}: expected seq {expected_seq} (a record is missing)"
    if row["prev_hash"] != prev_hash:
        return "prev_hash does not match the hash of the record before it"
    if chain_hash(prev_hash, row) != row["hash"]:
        return "hash does not match the record's contents (the record was changed)"
    return None


async def verify_chain(merchant_id: str) -> VerifyResult:
    """Recompute ``merchant_id``'s chain in ``seq`` order, inside the caller's tenant transaction."""
    if current_iso() is None:
        raise TenantScopeError("verify_chain runs inside the merchant's tenant transaction")
    columns = ", ".join(dict.fromkeys(("seq", "prev_hash", "hash", *CHAINED_FIELDS)))
    expected_seq, prev_hash, records = 1, GENESIS, 0
    last_seq: int | None = None
    while True:
        rows = await fetch(
            f"SELECT {columns} FROM portal_audit_event WHERE merchant_id = $1"
            " AND ($2::bigint IS NULL OR seq > $2) ORDER BY seq LIMIT $3",
            merchant_id,
            last_seq,
            BATCH,
        )
        for row in rows:
            records += 1
            problem = _problem(row, expected_seq, prev_hash)
            if problem is not None:
                return VerifyResult(
                    merchant_id=merchant_id,
                    records=records,
                    head_seq=row["seq"],
                    head_hash=prev_hash,
                    broken=BrokenLink(seq=row["seq"], id=row["id"], problem=problem),
                )
            expected_seq, prev_hash, last_seq = row["seq"] + 1, row["hash"], row["seq"]
        if len(rows) < BATCH:
            return VerifyResult(merchant_id=merchant_id, records=records, head_seq=last_seq or 0, head_hash=prev_hash)
