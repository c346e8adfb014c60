"""Isolation of the event tables; audit rows are append-only for the application."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import RESOLVER_ROLE, resolver_read_sql, tenant_table_sql

ID = "2026-11-25T10:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "events: row-level security, append-only audit, due-work lookup"

CONSTRAINTS = """
CREATE UNIQUE INDEX portal_audit_event_chain ON portal_audit_event (merchant_id, seq);
CREATE INDEX portal_audit_event_time ON portal_audit_event (merchant_id, occurred_at);
CREATE INDEX portal_audit_event_customer ON portal_audit_event (merchant_id, customer_id, seq);
CREATE INDEX portal_webhook_delivery_due ON portal_webhook_delivery (next_attempt_at) WHERE status = 'pending';
CREATE INDEX portal_webhook_delivery_created ON portal_webhook_delivery (merchant_id, created_at);
CREATE INDEX portal_event_handling_due ON portal_event_handling (next_attempt_at) WHERE status = 'pending';
ALTER TABLE portal_webhook_delivery ADD CONSTRAINT portal_webhook_delivery_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE portal_event_handling ADD CONSTRAINT portal_event_handling_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed'));
"""

DUE = f"""
CREATE FUNCTION portal_isos_with_due_work() RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $f$
    SELECT iso_id FROM portal_webhook_delivery WHERE status = 'pending' AND next_attempt_at <= now()
    UNION
    SELECT iso_id FROM portal_event_handling WHERE status = 'pending' AND next_attempt_at <= now()
    $f$;
COMMENT ON FUNCTION portal_isos_with_due_work() IS
    'ISO ids with webhook deliveries or event handlers due; workers then visit each ISO in turn.';
GRANT CREATE ON SCHEMA public TO {RESOLVER_ROLE};
ALTER FUNCTION portal_isos_with_due_work() OWNER TO {RESOLVER_ROLE};
REVOKE CREATE ON SCHEMA public FROM {RESOLVER_ROLE};
REVOKE ALL ON FUNCTION portal_isos_with_due_work() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_isos_with_due_work() TO portal_app;
"""


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    statements = [
        CONSTRAINTS,
        tenant_table_sql("portal_audit_event", privileges="SELECT, INSERT"),
        *(
            tenant_table_sql(table)
            for table in (
                "portal_webhook_endpoint",
                "portal_webhook_delivery",
                "portal_webhook_attempt",
                "portal_event_handling",
            )
        ),
        resolver_read_sql("portal_webhook_delivery"),
        resolver_read_sql("portal_event_handling"),
        DUE,
    ]
    await transaction.connection.execute("\n".join(statements))


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
