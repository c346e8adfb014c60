"""Cards on file, isolated per ISO by row-level security."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import tenant_table_sql

ID = "2026-11-26T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "cards on file"


async def _create() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None
    await transaction.connection.execute(
        """
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
        """
        + tenant_table_sql("cards_payment_method", privileges="SELECT, INSERT, UPDATE")
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="cards", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
