"""Migrations: dependency order, and a second run changes nothing."""

from __future__ import annotations

import asyncpg

from portal.platform import Platform

SCHEMA_SNAPSHOT = """
SELECT table_name, column_name, data_type, is_nullable, column_default
  FROM information_schema.columns WHERE table_schema IN ('public', 'portal_queue')
UNION ALL
SELECT tablename, policyname, cmd, array_to_string(roles, ','), qual FROM pg_policies
UNION ALL
SELECT relname, relrowsecurity::text, relforcerowsecurity::text, '', '' FROM pg_class
 WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
UNION ALL
SELECT proname, prosecdef::text, proowner::regrole::text, '', '' FROM pg_proc
 WHERE pronamespace = 'public'::regnamespace
ORDER BY 1, 2
"""


async def test_second_migrate_applies_nothing_and_changes_nothing(portal_platform: Platform) -> None:
    owner = await asyncpg.connect(portal_platform.settings.database_url)
    try:
        before = [tuple(row) for row in await owner.fetch(SCHEMA_SNAPSHOT)]
        ran_before = await owner.fetch("SELECT app_name, name FROM migration ORDER BY id")
        applied = await portal_platform.migrate()
        after = [tuple(row) for row in await owner.fetch(SCHEMA_SNAPSHOT)]
        ran_after = await owner.fetch("SELECT app_name, name FROM migration ORDER BY id")
    finally:
        await owner.close()
    assert applied == {}
    assert before == after
    assert ran_before == ran_after
    assert [row["app_name"] for row in ran_after][:2] == ["portal", "portal"]


async def test_every_tenant_table_forces_row_level_security(portal_platform: Platform) -> None:
    owner = await asyncpg.connect(portal_platform.settings.database_url)
    try:
        rows = await owner.fetch(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
              FROM pg_class c JOIN information_schema.columns col
                ON col.table_name = c.relname AND col.column_name = 'iso_id' AND col.table_schema = 'public'
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
            """
        )
    finally:
        await owner.close()
    assert len(rows) >= 5
    assert all(row["relrowsecurity"] and row["relforcerowsecurity"] for row in rows), rows
