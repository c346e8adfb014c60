"""Isolation: the application role, row-level security, constraints and the narrow lookups."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import RESOLVER_ROLE, ROLES_SQL, resolver_read_sql, tenant_table_sql

ID = "2026-11-25T08:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "isolation: roles, row-level security, lookups"

TENANT_TABLES = (
    "portal_merchant",
    "portal_merchant_domain",
    "portal_customer",
    "portal_plugin_activation",
    "portal_session",
)

CONSTRAINTS = """
CREATE UNIQUE INDEX portal_customer_email_per_merchant
    ON portal_customer (merchant_id, email_normalized);
CREATE UNIQUE INDEX portal_customer_external_ref_per_merchant
    ON portal_customer (merchant_id, external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX portal_customer_iso_email ON portal_customer (iso_id, email_normalized);
CREATE UNIQUE INDEX portal_plugin_activation_per_merchant
    ON portal_plugin_activation (merchant_id, plugin_key);
ALTER TABLE portal_iso ADD CONSTRAINT portal_iso_status_check
    CHECK (status IN ('active', 'suspended'));
ALTER TABLE portal_merchant ADD CONSTRAINT portal_merchant_status_check
    CHECK (status IN ('active', 'suspended'));
ALTER TABLE portal_merchant ADD CONSTRAINT portal_merchant_brand_color_check
    CHECK (brand_color ~ '^#[0-9a-fA-F]{6}$');
ALTER TABLE portal_merchant_domain ADD CONSTRAINT portal_merchant_domain_host_lower
    CHECK (host = lower(host));
"""

ISO_POLICY = """
GRANT SELECT ON migration TO portal_app;
ALTER TABLE portal_iso ENABLE ROW LEVEL SECURITY;
ALTER TABLE portal_iso FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON portal_iso
    USING (id = portal_current_iso()) WITH CHECK (id = portal_current_iso());
REVOKE ALL ON portal_iso FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON portal_iso TO portal_app;
"""

LOOKUPS = f"""
CREATE FUNCTION portal_resolve_host(p_host text, p_base_domain text)
    RETURNS TABLE (iso_id text, merchant_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $f$
    SELECT m.iso_id, m.id
      FROM portal_merchant m
      JOIN portal_iso i ON i.id = m.iso_id
      LEFT JOIN portal_merchant_domain d ON d.merchant_id = m.id AND d.host = p_host
     WHERE m.status = 'active' AND i.status = 'active'
       AND (d.host IS NOT NULL OR m.slug || '.' || p_base_domain = p_host)
     ORDER BY d.host IS NULL
     LIMIT 1
    $f$;
COMMENT ON FUNCTION portal_resolve_host(text, text) IS
    'Host to (iso, merchant) ids for active tenants; the only read before an ISO is known.';

CREATE FUNCTION portal_iso_id_for_slug(p_slug text) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $f$ SELECT id FROM portal_iso WHERE slug = p_slug $f$;

CREATE FUNCTION portal_locate_merchant(p_slug text) RETURNS TABLE (iso_id text, merchant_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $f$ SELECT iso_id, id FROM portal_merchant WHERE slug = p_slug $f$;
COMMENT ON FUNCTION portal_locate_merchant(text) IS
    'Merchant slug to (iso, merchant) ids, whatever its status; for operator commands.';

CREATE FUNCTION portal_locate_domain(p_host text) RETURNS TABLE (iso_id text, merchant_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $f$ SELECT iso_id, merchant_id FROM portal_merchant_domain WHERE host = p_host $f$;
COMMENT ON FUNCTION portal_locate_domain(text) IS
    'Custom host to (iso, merchant) ids, whatever the status; for operator commands.';

CREATE FUNCTION portal_iso_ids(p_include_suspended boolean DEFAULT false) RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $f$ SELECT id FROM portal_iso WHERE p_include_suspended OR status = 'active' ORDER BY id $f$;
COMMENT ON FUNCTION portal_iso_ids(boolean) IS
    'ISO ids, for system jobs that set each ISO in turn.';

GRANT CREATE ON SCHEMA public TO {RESOLVER_ROLE};  -- a new owner needs it, for this statement only
ALTER FUNCTION portal_resolve_host(text, text) OWNER TO {RESOLVER_ROLE};
ALTER FUNCTION portal_iso_id_for_slug(text) OWNER TO {RESOLVER_ROLE};
ALTER FUNCTION portal_iso_ids(boolean) OWNER TO {RESOLVER_ROLE};
ALTER FUNCTION portal_locate_merchant(text) OWNER TO {RESOLVER_ROLE};
ALTER FUNCTION portal_locate_domain(text) OWNER TO {RESOLVER_ROLE};
REVOKE CREATE ON SCHEMA public FROM {RESOLVER_ROLE};
REVOKE ALL ON FUNCTION portal_resolve_host(text, text), portal_iso_id_for_slug(text), portal_iso_ids(boolean),
    portal_locate_merchant(text), portal_locate_domain(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_resolve_host(text, text), portal_iso_id_for_slug(text), portal_iso_ids(boolean),
    portal_locate_merchant(text), portal_locate_domain(text) TO portal_app;

CREATE SCHEMA IF NOT EXISTS portal_queue;
REVOKE ALL ON SCHEMA portal_queue FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA portal_queue TO portal_app;
COMMENT ON SCHEMA portal_queue IS 'Task queue of the PostgreSQL taskiq broker; holds no tenant data.';

CREATE FUNCTION portal_notify_tenants_changed() RETURNS trigger
    LANGUAGE plpgsql AS $f$
    BEGIN
        PERFORM pg_notify('portal_tenants_changed', '');
        RETURN NULL;
    END $f$;
"""

NOTIFY_TABLES = ("portal_iso", "portal_merchant", "portal_merchant_domain", "portal_plugin_activation")


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    statements = [ROLES_SQL, CONSTRAINTS, ISO_POLICY]
    statements += [tenant_table_sql(table) for table in TENANT_TABLES]
    statements += [resolver_read_sql(t) for t in ("portal_iso", "portal_merchant", "portal_merchant_domain")]
    statements.append(LOOKUPS)
    statements += [
        f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION portal_notify_tenants_changed();"
        for table in NOTIFY_TABLES
    ]
    await transaction.connection.execute("\n".join(statements))


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
