"""SQL that makes a table tenant-owned: row-level security on ``iso_id`` and grants.

Core and plugin migrations call :func:`tenant_table_sql` for each table they create, so every
tenant-owned table is isolated the same way.
"""

from __future__ import annotations

import re

APP_ROLE = "portal_app"
"""The role the application connects as: LOGIN, not superuser, not BYPASSRLS."""
RESOLVER_ROLE = "portal_resolver"
"""NOLOGIN role owning the few SECURITY DEFINER lookups that run before an ISO is known."""

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


ROLES_SQL = f"""
DO $$
BEGIN
    CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE {RESOLVER_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}' AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role {APP_ROLE} is a superuser or bypasses row-level security; refusing to use it';
    END IF;
END $$;
GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {RESOLVER_ROLE};
DO $$
BEGIN
    IF NOT pg_has_role(current_user, '{RESOLVER_ROLE}', 'MEMBER') THEN
        EXECUTE format('GRANT {RESOLVER_ROLE} TO %I', current_user);
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'role % must be a member of {RESOLVER_ROLE} to give it the lookup functions', current_user
        USING HINT = 'As a superuser, or the role that created {RESOLVER_ROLE}: GRANT {RESOLVER_ROLE} TO '
            || quote_ident(current_user) || ';';
END $$;
CREATE OR REPLACE FUNCTION portal_current_iso() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $f$ SELECT NULLIF(current_setting('portal.iso_id', true), '') $f$;
"""


def tenant_table_sql(table: str, *, key: str = "iso_id", privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> str:
    """Enable and force row-level security on ``table`` keyed on ``key``; grant the app role."""
    table, key = _ident(table), _ident(key)
    return f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON {table};
CREATE POLICY tenant_isolation ON {table}
    USING ({key} = portal_current_iso())
    WITH CHECK ({key} = portal_current_iso());
REVOKE ALL ON {table} FROM PUBLIC;
GRANT {privileges} ON {table} TO {APP_ROLE};
"""


def resolver_read_sql(table: str) -> str:
    """Let the resolver role read every row of ``table`` (for SECURITY DEFINER lookups)."""
    table = _ident(table)
    return f"""
DROP POLICY IF EXISTS resolver_read ON {table};
CREATE POLICY resolver_read ON {table} FOR SELECT TO {RESOLVER_ROLE} USING (true);
GRANT SELECT ON {table} TO {RESOLVER_ROLE};
"""
