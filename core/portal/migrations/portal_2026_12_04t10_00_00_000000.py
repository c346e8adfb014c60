"""Payment methods move to core: ``cards_payment_method`` becomes ``portal_payment_method``.

Cards on file are core data now (``portal.payments.methods``): renewals and payment recovery
charge the default card whether or not the cards plugin is on for a merchant.

- On a database where the cards plugin's migration ``2026-11-26T10:00:00:000000`` created
  ``cards_payment_method``, the table is renamed, with its constraints and indexes: every row
  and id stays, and so do the row-level security policy and the grants (they belong to the
  table, whatever its name).
- On any other database the table is created here, exactly as the rename leaves it. The cards
  plugin's migration now does nothing (it keeps its id, so databases that ran it see nothing
  pending), and core migrations run before the plugins'.

Either way ``tenant_table_sql`` is applied again, so the policy and grants are the ones every
tenant table gets. The application role still has no DELETE: removed cards keep their row.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import tenant_table_sql

ID = "2026-12-04T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payment methods in core: portal_payment_method (cards_payment_method renamed, rows kept)"

OLD = "cards_payment_method"
NEW = "portal_payment_method"

CREATE = f"""
CREATE TABLE {NEW} (
    id varchar(40) PRIMARY KEY,
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
    merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),
    customer_id varchar(40) NOT NULL REFERENCES portal_customer (id),
    gateway varchar(40) NOT NULL,
    vault_id varchar(100) NOT NULL,
    billing_id varchar(100) NOT NULL,
    brand varchar(20) NOT NULL,
    last4 varchar(4) NOT NULL CHECK (last4 ~ '^[0-9]{{4}}$'),
    exp_month smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year smallint NOT NULL CHECK (exp_year BETWEEN 2000 AND 2200),
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    removed_at timestamptz,
    CHECK (NOT (is_default AND removed_at IS NOT NULL))
);
CREATE UNIQUE INDEX {NEW}_one_default ON {NEW} (customer_id) WHERE is_default;
CREATE INDEX {NEW}_on_file ON {NEW} (merchant_id, customer_id, created_at) WHERE removed_at IS NULL;
"""

TAKE_OVER = f"""
DO $take_over$
DECLARE
    item record;
BEGIN
    IF to_regclass('public.{OLD}') IS NULL THEN
{CREATE}        RETURN;
    END IF;
    ALTER TABLE public.{OLD} RENAME TO {NEW};
    -- Constraint names follow the table's (the primary key's index is renamed with it).
    FOR item IN
        SELECT conname FROM pg_constraint
         WHERE conrelid = 'public.{NEW}'::regclass AND conname LIKE '{OLD}\\_%'
    LOOP
        EXECUTE format('ALTER TABLE public.{NEW} RENAME CONSTRAINT %I TO %I',
                       item.conname, '{NEW}' || substr(item.conname, length('{OLD}') + 1));
    END LOOP;
    FOR item IN
        SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = 'public.{NEW}'::regclass AND c.relname LIKE '{OLD}\\_%'
    LOOP
        EXECUTE format('ALTER INDEX public.%I RENAME TO %I',
                       item.relname, '{NEW}' || substr(item.relname, length('{OLD}') + 1));
    END LOOP;
END
$take_over$;
COMMENT ON TABLE {NEW} IS
    'Cards on file (gateway vault references, brand, last four digits, expiry); removed cards keep their row.';
"""


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    await transaction.connection.execute(TAKE_OVER + tenant_table_sql(NEW, privileges="SELECT, INSERT, UPDATE"))


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
