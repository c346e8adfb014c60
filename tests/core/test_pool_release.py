"""Pooled connections are released without asyncpg's reset statement: nothing a request leaves on
its connection outlives its transaction (tenant scope, locks), and the code sets nothing for good."""

from __future__ import annotations

import re
from pathlib import Path

from portal.db.engine import ENGINE, PortalConnection, fetch, tenant_transaction, transaction_lock
from portal.platform import Platform

ROOT = Path(__file__).parents[2]


async def test_a_released_connection_keeps_no_tenant_scope_and_no_lock(shared_tenants: Platform) -> None:
    tenant = await shared_tenants.tenants.resolve("t-greenfield.portal.localhost")
    assert tenant is not None
    pool = ENGINE.pool
    assert pool is not None
    async with tenant_transaction(tenant.merchant.iso_id):
        await transaction_lock("pool-release-test", tenant.merchant.id)
        inside = await fetch("SELECT current_setting('portal.iso_id', true) AS iso, pg_backend_pid() AS pid")
    assert inside[0]["iso"] == tenant.merchant.iso_id
    # Every idle connection of the pool, the one just released among them, is clean.
    connections = [await pool.acquire() for _ in range(pool.get_size())]
    try:
        assert all(isinstance(connection, PortalConnection) for connection in connections)
        seen = set()
        for connection in connections:
            row = await connection.fetchrow(
                "SELECT coalesce(current_setting('portal.iso_id', true), '') AS iso, pg_backend_pid() AS pid, "
                "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks"
            )
            assert row is not None and row["iso"] == "" and row["locks"] == 0
            seen.add(row["pid"])
        assert inside[0]["pid"] in seen
    finally:
        for connection in connections:
            await pool.release(connection)


def test_no_code_sets_session_state_on_pooled_connections() -> None:
    """Settings only for the transaction, locks only for the transaction, no LISTEN through the pool."""
    session_wide = re.compile(
        r"set_config\([^)]*,\s*false\)|[\"']\s*SET\s+(SESSION\s+)?[a-z_.]+\s*(=|TO)\s|pg_advisory_lock\(|[\"']\s*LISTEN\s",
    )  # SQL keywords are written in capitals here
    found = []
    for folder in ("core/portal", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            # the broker, the tenant listener and the migration lock use connections of their own
            if "migrations" in path.parts or path.name in {"pg_broker.py", "listener.py", "migrate.py"}:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if session_wide.search(line) and "SET LOCAL" not in line.upper():
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "session-wide state on a pooled connection:\n" + "\n".join(found)
