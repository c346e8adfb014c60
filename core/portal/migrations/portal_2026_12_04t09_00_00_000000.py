"""Durable tasks: one PostgreSQL record per task, claims that name their worker, scheduled jobs.

Every task that must happen is a row of ``portal_task`` written in the transaction that decides
it; workers claim due rows with ``FOR UPDATE SKIP LOCKED`` and a lease. Webhook deliveries and
handler runs gain ``claimed_by`` too, so a worker that stops hands back what it holds at once.
Scheduled jobs (sweeps) are rows of ``portal_schedule``. The taskiq PostgreSQL queue table is
gone: on PostgreSQL, broker messages are bare NOTIFY wake-ups and the records are the queue.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import RESOLVER_ROLE, resolver_read_sql, tenant_table_sql

ID = "2026-12-04T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "durable tasks, claims by worker, scheduled jobs; no taskiq queue table"

TABLES = """
CREATE TABLE portal_task (
    id varchar(40) PRIMARY KEY,
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id) ON DELETE CASCADE,
    merchant_id varchar(40) REFERENCES portal_merchant (id) ON DELETE CASCADE,
    name varchar(100) NOT NULL,
    args jsonb NOT NULL DEFAULT '{}',
    dedupe_key varchar(200),
    status varchar(16) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    next_attempt_at timestamptz DEFAULT now(),
    claimed_by varchar(100),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    done_at timestamptz,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX portal_task_due ON portal_task (next_attempt_at) WHERE status = 'pending';
CREATE INDEX portal_task_done ON portal_task (done_at) WHERE status <> 'pending';
CREATE INDEX portal_task_iso ON portal_task (iso_id);
CREATE UNIQUE INDEX portal_task_dedupe ON portal_task (iso_id, name, dedupe_key) WHERE dedupe_key IS NOT NULL;
COMMENT ON TABLE portal_task IS
    'Durable tasks (emails, retries, renewals): the record is the queue; broker messages only wake workers.';

ALTER TABLE portal_webhook_delivery ADD COLUMN claimed_by varchar(100);
ALTER TABLE portal_event_handling ADD COLUMN claimed_by varchar(100);

CREATE TABLE portal_schedule (
    name varchar(100) PRIMARY KEY,
    next_run_at timestamptz NOT NULL DEFAULT now(),
    claimed_by varchar(100),
    last_started_at timestamptz,
    last_finished_at timestamptz,
    last_error text
);
COMMENT ON TABLE portal_schedule IS
    'Periodic system jobs (sweeps): one row per job, claimed by one worker at a time; no tenant data.';
REVOKE ALL ON portal_schedule FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON portal_schedule TO portal_app;
"""

FUNCTIONS = f"""
DROP FUNCTION portal_isos_with_due_work();
CREATE FUNCTION portal_isos_with_due_work(p_kind text) RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $f$
    SELECT DISTINCT iso_id FROM portal_webhook_delivery
     WHERE p_kind = 'webhook' AND status = 'pending' AND next_attempt_at <= now()
    UNION
    SELECT DISTINCT iso_id FROM portal_event_handling
     WHERE p_kind = 'handler' AND status = 'pending' AND next_attempt_at <= now()
    UNION
    SELECT DISTINCT iso_id FROM portal_task
     WHERE p_kind = 'task' AND status = 'pending' AND next_attempt_at <= now()
    $f$;
COMMENT ON FUNCTION portal_isos_with_due_work(text) IS
    'ISO ids with work of one kind (webhook, handler, task) due; workers then visit each ISO in turn.';

CREATE FUNCTION portal_due_work_stats() RETURNS TABLE (kind text, due bigint, oldest_due_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $f$
    SELECT 'webhook', count(*), min(next_attempt_at) FROM portal_webhook_delivery
     WHERE status = 'pending' AND next_attempt_at <= now()
    UNION ALL
    SELECT 'handler', count(*), min(next_attempt_at) FROM portal_event_handling
     WHERE status = 'pending' AND next_attempt_at <= now()
    UNION ALL
    SELECT 'task', count(*), min(next_attempt_at) FROM portal_task
     WHERE status = 'pending' AND next_attempt_at <= now()
    $f$;
COMMENT ON FUNCTION portal_due_work_stats() IS
    'Counts of due, unclaimed work by kind and the oldest due time (for health and metrics; no tenant data).';

GRANT CREATE ON SCHEMA public TO {RESOLVER_ROLE};
ALTER FUNCTION portal_isos_with_due_work(text) OWNER TO {RESOLVER_ROLE};
ALTER FUNCTION portal_due_work_stats() OWNER TO {RESOLVER_ROLE};
REVOKE CREATE ON SCHEMA public FROM {RESOLVER_ROLE};
REVOKE ALL ON FUNCTION portal_isos_with_due_work(text), portal_due_work_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_isos_with_due_work(text), portal_due_work_stats() TO portal_app;
"""

DROP_QUEUE = """
DO $$
BEGIN
    DROP SCHEMA IF EXISTS portal_queue CASCADE;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'schema portal_queue (the former taskiq queue) is not ours to drop; drop it as its owner';
END $$;
"""


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    statements = [
        TABLES,
        tenant_table_sql("portal_task"),
        resolver_read_sql("portal_task"),
        FUNCTIONS,
        DROP_QUEUE,
    ]
    await transaction.connection.execute("\n".join(statements))


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
