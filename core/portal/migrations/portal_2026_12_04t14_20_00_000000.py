"""A session lookup in one statement: ``portal_session_lookup``.

Every page of a signed-in customer looks up its session. As a tenant transaction that took three
round trips (``BEGIN`` with the tenant scope, the query, ``COMMIT``); this function takes one. It
is not ``SECURITY DEFINER``: it runs as the caller (the application role), sets the tenant scope
itself with ``set_config(..., true)`` and sets it back as it was before returning (inside an open
transaction the caller's scope is intact; an error aborts the statement, or rolls back to the
caller's savepoint, which restores the setting too), so row-level security decides what it may
read, exactly as in a tenant transaction. (A ``SET portal.iso_id`` clause would restore it by
itself, but PostgreSQL lets only a superuser attach a custom setting to a function, and migrations
run as a role that is not one.) It refreshes the idle timer only when the last refresh is older than
``p_touch_before`` (one write a minute per session, not one per page).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE

ID = "2026-12-04T14:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "session lookup in one statement, under the tenant scope"

LOOKUP = """
CREATE FUNCTION portal_session_lookup(
    p_iso_id text, p_digest text, p_merchant_id text, p_now timestamptz, p_idle_since timestamptz,
    p_touch_before timestamptz
) RETURNS TABLE (
    link_id text, flow text, return_url text, locale text, customer_id text, merchant_id text, email text, name text
)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, public
    AS $f$
    #variable_conflict use_column
    DECLARE
        previous text := COALESCE(current_setting('portal.iso_id', true), '');
    BEGIN
        PERFORM set_config('portal.iso_id', p_iso_id, true);
        UPDATE portal_session s SET last_seen_at = p_now
         WHERE s.id = p_digest AND s.merchant_id = p_merchant_id AND s.ended_at IS NULL
           AND s.expires_at > p_now AND s.last_seen_at > p_idle_since AND s.last_seen_at < p_touch_before;
        RETURN QUERY
            SELECT s.link_id::text, s.flow::text, s.return_url::text, s.locale::text,
                   c.id::text, c.merchant_id::text, c.email::text, c.name::text
              FROM portal_session s JOIN portal_customer c ON c.id = s.customer_id
             WHERE s.id = p_digest AND s.merchant_id = p_merchant_id AND c.merchant_id = p_merchant_id
               AND s.ended_at IS NULL AND s.expires_at > p_now AND s.last_seen_at > p_idle_since;
        PERFORM set_config('portal.iso_id', previous, true);
    END $f$;
COMMENT ON FUNCTION portal_session_lookup(text, text, text, timestamptz, timestamptz, timestamptz) IS
    'A live session and its customer, under the given ISO''s row-level security; refreshes the idle timer.';
REVOKE ALL ON FUNCTION portal_session_lookup(text, text, text, timestamptz, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_session_lookup(text, text, text, timestamptz, timestamptz, timestamptz)
    TO portal_app;
"""


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    await transaction.connection.execute(LOOKUP)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
