"""Isolation and constraints of the access tables; the API-key lookup."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import RESOLVER_ROLE, resolver_read_sql, tenant_table_sql

ID = "2026-11-25T09:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "access: row-level security, constraints, API-key lookup"

TABLES = ("portal_signing_key", "portal_link", "portal_api_key", "portal_rate_counter")

CONSTRAINTS = """
CREATE UNIQUE INDEX portal_link_jti_per_merchant ON portal_link (merchant_id, jti);
CREATE UNIQUE INDEX portal_signing_key_one_primary ON portal_signing_key (merchant_id) WHERE is_primary;
ALTER TABLE portal_api_key ADD CONSTRAINT portal_api_key_kind_check CHECK (
    (kind = 'merchant' AND merchant_id IS NOT NULL) OR (kind = 'iso' AND merchant_id IS NULL)
);
ALTER TABLE portal_link ADD CONSTRAINT portal_link_purpose_check
    CHECK (purpose IS NULL OR purpose IN ('portal', 'update_payment', 'switch'));
CREATE INDEX portal_rate_counter_expires ON portal_rate_counter (expires_at);
"""

LOOKUP = f"""
CREATE FUNCTION portal_find_api_key(p_secret_hash text)
    RETURNS TABLE (id text, iso_id text, merchant_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $f$
    SELECT k.id, k.iso_id, k.merchant_id FROM portal_api_key k
      JOIN portal_iso i ON i.id = k.iso_id
     WHERE k.secret_hash = p_secret_hash AND k.revoked_at IS NULL AND i.status = 'active'
       AND (k.merchant_id IS NULL OR EXISTS (
            SELECT 1 FROM portal_merchant m WHERE m.id = k.merchant_id AND m.status = 'active'))
    $f$;
COMMENT ON FUNCTION portal_find_api_key(text) IS
    'API key hash to ids; how a request on the API host learns its ISO.';
GRANT CREATE ON SCHEMA public TO {RESOLVER_ROLE};
ALTER FUNCTION portal_find_api_key(text) OWNER TO {RESOLVER_ROLE};
REVOKE CREATE ON SCHEMA public FROM {RESOLVER_ROLE};
REVOKE ALL ON FUNCTION portal_find_api_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_find_api_key(text) TO portal_app;
"""


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    statements = [CONSTRAINTS, *(tenant_table_sql(table) for table in TABLES)]
    statements += [resolver_read_sql("portal_api_key"), LOOKUP]
    await transaction.connection.execute("\n".join(statements))


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
