"""``assert_tenant_table``: a plugin's table is owned by tenants the way core's tables are."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from portal.db.engine import fetch, tenant_transaction
from portal.platform import Platform
from portal.tasks.runtime import current_platform

POLICY = "tenant_isolation"
"""The policy ``portal.sdk.tenant_table_sql`` creates."""

CATALOG = """
SELECT c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       array(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE') AS public_access
  FROM pg_class c WHERE c.oid = to_regclass($1)
"""

POLICIES = """
SELECT policyname, cmd, qual, with_check FROM pg_policies
 WHERE schemaname = (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE c.oid = to_regclass($1))
   AND tablename = (SELECT relname FROM pg_class WHERE oid = to_regclass($1))
"""


class _WrittenError(Exception):
    """Raised to roll back a write that row-level security should have refused."""


def _normalised(expression: str | None) -> str:
    return " ".join((expression or "").replace("::text", "").replace("(", " ").replace(")", " ").split())


async def assert_tenant_table(
    name: str, *, columns: Sequence[str] = ("iso_id", "merchant_id"), platform: Platform | None = None
) -> None:
    """Assert that table ``name`` is tenant-owned, from the catalog and by behaviour.

    The catalog: ``columns`` (``iso_id``, and ``merchant_id`` that scopes rows to a merchant);
    row-level security enabled and forced;
    the ``tenant_isolation`` policy on ``iso_id = portal_current_iso()`` for reading and writing;
    nothing granted to ``PUBLIC``. Behaviour, as the application role: the table must hold at
    least one row (create one first); each ISO's rows are visible in its own transaction,
    invisible in another ISO's, and a copy of one cannot be written from another ISO's.
    """
    platform = platform or current_platform()
    owner = await asyncpg.connect(platform.settings.database_url)
    try:
        found = await owner.fetchrow(CATALOG, name)
        assert found is not None, f"no table {name!r}"
        policies = {row["policyname"]: row for row in await owner.fetch(POLICIES, name)}
        rows = await owner.fetch(f"SELECT iso_id, row_to_json(t)::text AS row FROM {name} t LIMIT 1")
    finally:
        await owner.close()
    problems = [
        f"no {column} column" for column in dict.fromkeys(("iso_id", *columns)) if column not in found["columns"]
    ]
    if not (found["enabled"] and found["forced"]):
        problems.append(f"row-level security enabled: {found['enabled']}, forced: {found['forced']}")
    policy = policies.get(POLICY)
    expected = "iso_id = portal_current_iso"
    if policy is None:
        problems.append(f"no {POLICY} policy (use portal.sdk.tenant_table_sql in the migration)")
    elif policy["cmd"] != "ALL" or {_normalised(policy["qual"]), _normalised(policy["with_check"])} != {expected}:
        problems.append(f"{POLICY} is {policy['cmd']} USING {policy['qual']} WITH CHECK {policy['with_check']}")
    if found["public_access"]:
        problems.append("PUBLIC has privileges on it")
    assert not problems, f"{name} is not a tenant table:\n- " + "\n- ".join(problems)
    assert rows, f"{name} has no row: create one, so that the check can show another ISO cannot reach it"
    await _assert_isolated(name, str(rows[0]["iso_id"]), rows[0]["row"])


async def _assert_isolated(name: str, iso_id: str, row: str) -> None:
    other = f"iso_probe_{iso_id[-6:]}_other"
    async with tenant_transaction(iso_id):
        own = await fetch(f"SELECT count(*) AS n FROM {name} WHERE iso_id = $1", iso_id)
    async with tenant_transaction(other):
        seen = await fetch(f"SELECT count(*) AS n FROM {name} WHERE iso_id = $1", iso_id)
    assert own[0]["n"] > 0, f"{name}: the application role does not see its own ISO's rows"
    assert seen[0]["n"] == 0, f"{name}: another ISO's transaction sees {seen[0]['n']} rows of ISO {iso_id}"
    try:
        async with tenant_transaction(other):
            await fetch(f"INSERT INTO {name} SELECT * FROM json_populate_record(NULL::{name}, $1::json)", row)
            raise _WrittenError
    except asyncpg.InsufficientPrivilegeError:
        return
    except _WrittenError:
        raise AssertionError(f"{name}: another ISO's transaction wrote a row of ISO {iso_id}") from None
