"""Cards on file move to core: the migration keeps every row and id, and isolation and grants stay.

``portal migrate`` runs in its own process against scratch databases (the test platform keeps
the test database). The upgraded database is built as one looked before the move: migrated,
then with ``cards_payment_method`` exactly as the cards plugin's migration created it (holding
cards of two ISOs) in place of core's table, and the core migration not yet recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from portal.db.engine import with_user
from portal.db.security import APP_ROLE, tenant_table_sql
from portal.testing import scratch_database
from support.cli import cli_environment, portal

MIGRATION = "2026-12-04T10:00:00:000000"

CARDS_TABLE_BEFORE = """
CREATE TABLE cards_payment_method (
    id varchar(40) PRIMARY KEY,
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
    merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),
    customer_id varchar(40) NOT NULL REFERENCES portal_customer (id),
    gateway varchar(40) NOT NULL,
    vault_id varchar(100) NOT NULL,
    billing_id varchar(100) NOT NULL,
    brand varchar(20) NOT NULL,
    last4 varchar(4) NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    exp_month smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year smallint NOT NULL CHECK (exp_year BETWEEN 2000 AND 2200),
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    removed_at timestamptz,
    CHECK (NOT (is_default AND removed_at IS NOT NULL))
);
CREATE UNIQUE INDEX cards_payment_method_one_default
    ON cards_payment_method (customer_id) WHERE is_default;
CREATE INDEX cards_payment_method_on_file
    ON cards_payment_method (merchant_id, customer_id, created_at) WHERE removed_at IS NULL;
""" + tenant_table_sql("cards_payment_method", privileges="SELECT, INSERT, UPDATE")
"""What the cards plugin's migration ``2026-11-26T10:00:00:000000`` created, before the move."""

TABLE_SNAPSHOT = """
SELECT 'column', a.attnum::text, a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || COALESCE(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = 'portal_payment_method'::regclass AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', conname::text, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE conrelid = 'portal_payment_method'::regclass
UNION ALL
SELECT 'index', indexname::text, indexdef FROM pg_indexes WHERE tablename = 'portal_payment_method'
UNION ALL
SELECT 'policy', policyname::text, cmd || ' ' || array_to_string(roles, ',') || ' ' || COALESCE(qual, '')
       || ' ' || COALESCE(with_check, '')
  FROM pg_policies WHERE tablename = 'portal_payment_method'
UNION ALL
SELECT 'table', relrowsecurity::text || ' ' || relforcerowsecurity::text,
       COALESCE(array_to_string(relacl, ','), '') || ' ' || COALESCE(obj_description(oid, 'pg_class'), '')
  FROM pg_class WHERE oid = 'portal_payment_method'::regclass
ORDER BY 1, 2
"""

CARD_COLUMNS = "id, iso_id, merchant_id, customer_id, gateway, vault_id, billing_id, brand, last4, exp_month, " \
    "exp_year, is_default, created_at, removed_at"  # fmt: skip


def migrate(env: dict[str, str]) -> str:
    result = portal(env, "migrate")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def snapshot(dsn: str) -> list[tuple[Any, ...]]:
    owner = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await owner.fetch(TABLE_SNAPSHOT)]
    finally:
        await owner.close()


async def cards_before_the_move(owner: asyncpg.Connection) -> list[dict[str, Any]]:
    """Put the cards plugin's table back as it was, with cards of customers of two ISOs."""
    await owner.execute("DROP TABLE portal_payment_method")
    await owner.execute("DELETE FROM migration WHERE app_name = 'portal' AND name = $1", MIGRATION)
    await owner.execute(CARDS_TABLE_BEFORE)
    customers = await owner.fetch(
        "SELECT c.id, c.iso_id, c.merchant_id FROM portal_customer c ORDER BY c.iso_id, c.merchant_id, c.id"
    )
    assert len({customer["iso_id"] for customer in customers}) == 2, customers
    cards: list[dict[str, Any]] = []
    for n, customer in enumerate(customers):
        for k in range(2):
            cards.append(
                {
                    "id": f"pm_01jdmove{n:02d}{k}",
                    "iso_id": customer["iso_id"],
                    "merchant_id": customer["merchant_id"],
                    "customer_id": customer["id"],
                    "gateway": "sandbox",
                    "vault_id": f"sbx_cv_{n:02d}",
                    "billing_id": f"pm01jdmove{n:02d}{k}",
                    "brand": "visa" if k else "mastercard",
                    "last4": f"{4242 + n:04d}",
                    "exp_month": 1 + n % 12,
                    "exp_year": 2030 + k,
                    "is_default": k == 1,
                    "created_at": datetime(2026, 11, 27, 10, n, k, tzinfo=UTC),
                    "removed_at": datetime(2026, 11, 28, tzinfo=UTC) if (k == 0 and n % 2) else None,
                }
            )
    await owner.executemany(
        f"INSERT INTO cards_payment_method ({CARD_COLUMNS}) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        [tuple(card.values()) for card in cards],
    )
    return cards


async def test_the_move_keeps_every_card_and_ends_as_a_fresh_database(portal_server_dsn: str, tmp_path: Path) -> None:
    async with (
        scratch_database(portal_server_dsn, "portal_pm_fresh_") as fresh,
        scratch_database(portal_server_dsn, "portal_pm_upgrade_") as upgraded,
    ):
        fresh_env = cli_environment(fresh, tmp_path / "site")
        assert f"{MIGRATION}" in migrate(fresh_env)
        upgraded_env = {**fresh_env, "PORTAL_DATABASE_URL": upgraded}
        migrate(upgraded_env)
        applied = portal(upgraded_env, "tenants", "apply", "tenants/demo.toml")
        assert applied.returncode == 0, applied.stderr

        owner = await asyncpg.connect(upgraded)
        try:
            cards = await cards_before_the_move(owner)
            assert migrate(upgraded_env) == f"portal: applied 1 migration(s): {MIGRATION}"
            assert await owner.fetchval("SELECT to_regclass('cards_payment_method')") is None
            rows = await owner.fetch(f"SELECT {CARD_COLUMNS} FROM portal_payment_method ORDER BY id")
        finally:
            await owner.close()
        assert [dict(row) for row in rows] == sorted(cards, key=lambda card: card["id"])
        assert await snapshot(upgraded) == await snapshot(fresh)
        assert migrate(upgraded_env) == "Nothing to migrate."

        app = await asyncpg.connect(with_user(upgraded, APP_ROLE, None))
        try:
            iso = cards[0]["iso_id"]
            await app.execute("SELECT set_config('portal.iso_id', $1, false)", iso)
            seen = await app.fetch("SELECT id FROM portal_payment_method ORDER BY id")
            assert [row["id"] for row in seen] == sorted(card["id"] for card in cards if card["iso_id"] == iso)
            other = next(card for card in cards if card["iso_id"] != iso)
            assert await app.execute("UPDATE portal_payment_method SET brand = 'x' WHERE id = $1", other["id"]) == (
                "UPDATE 0"
            )
            try:
                await app.execute("DELETE FROM portal_payment_method WHERE id = $1", cards[0]["id"])
            except asyncpg.InsufficientPrivilegeError:
                pass
            else:
                raise AssertionError("the application role may delete cards on file")
        finally:
            await app.close()


async def test_fresh_databases_get_the_table_from_core_and_the_cards_migration_does_nothing(
    portal_server_dsn: str, tmp_path: Path
) -> None:
    async with scratch_database(portal_server_dsn, "portal_pm_new_") as fresh:
        env = cli_environment(fresh, tmp_path / "site")
        output = migrate(env).splitlines()
        owner = await asyncpg.connect(fresh)
        try:
            order = await owner.fetch("SELECT app_name, name FROM migration ORDER BY id")
            tables = await owner.fetch(
                "SELECT relname FROM pg_class WHERE relname LIKE '%payment_method' AND relkind = 'r' ORDER BY 1"
            )
        finally:
            await owner.close()
    assert output[0].startswith("portal: applied") and MIGRATION in output[0]
    assert "cards: applied 1 migration(s): 2026-11-26T10:00:00:000000" in output
    ran = [(row["app_name"], row["name"]) for row in order]
    assert ran.index(("portal", MIGRATION)) < ran.index(("cards", "2026-11-26T10:00:00:000000"))
    assert [row["relname"] for row in tables] == ["portal_payment_method"]
