"""Public ids: a type prefix and 26 characters of time-ordered randomness (``cus_01J...``).

Non-sequential (80 random bits each) yet roughly ordered by creation, which keeps B-tree
indexes compact.
"""

from __future__ import annotations

import os
import re
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_PREFIX = re.compile(r"^[a-z]{2,8}$")


def new_id(prefix: str) -> str:
    """Return a fresh id such as ``mer_01jd9...`` for the given prefix."""
    if not _PREFIX.match(prefix):
        raise ValueError(f"invalid id prefix {prefix!r}")
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def has_prefix(value: str, prefix: str) -> bool:
    """True when ``value`` looks like an id of the given type."""
    return bool(re.fullmatch(rf"{prefix}_[0-9a-hjkmnp-tv-z]{{26}}", value))
