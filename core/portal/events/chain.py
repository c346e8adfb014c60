"""The audit hash chain: SHA-256 over the previous hash and a canonical encoding of the record."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
"""``prev_hash`` of a merchant's first record."""

CHAINED_FIELDS = (
    "id",
    "iso_id",
    "merchant_id",
    "seq",
    "type",
    "actor_type",
    "actor_id",
    "target_type",
    "target_id",
    "customer_id",
    "data",
    "before",
    "after",
    "ip",
    "user_agent",
    "request_id",
    "occurred_at",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def canonical(record: dict[str, Any]) -> bytes:
    """The chained fields as JSON with sorted keys and no whitespace (JSON columns parsed)."""
    fields = {}
    for name in CHAINED_FIELDS:
        value = record[name]
        if name in ("data", "before", "after") and isinstance(value, str):
            value = json.loads(value)
        fields[name] = _plain(value)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    """The hash of ``record`` following ``prev_hash``."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(record)).hexdigest()
