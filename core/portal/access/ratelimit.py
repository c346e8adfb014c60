"""Fixed-window counters in PostgreSQL, shared by every web process."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from portal.db.engine import fetch


def bucket_key(*parts: str) -> str:
    """A bucket name that does not store what it counts (emails, addresses) in clear."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


async def allow(
    iso_id: str, bucket: str, limit: int, window: timedelta = timedelta(hours=1), *, now: datetime | None = None
) -> bool:
    """Count one hit in ``bucket``; False once the window already holds ``limit`` hits.

    The window is the one holding ``now`` (default: the current time).
    """
    now = now or datetime.now(UTC)
    seconds = int(window.total_seconds())
    start = int(now.timestamp()) // seconds * seconds
    rows = await fetch(
        """
        INSERT INTO portal_rate_counter AS c (id, iso_id, hits, expires_at) VALUES ($1, $2, 1, $3)
        ON CONFLICT (id) DO UPDATE SET hits = c.hits + 1
        RETURNING c.hits
        """,
        f"{bucket}@{start}",
        iso_id,
        datetime.fromtimestamp(start + seconds, UTC),
    )
    return int(rows[0]["hits"]) <= limit
