"""Switch records (one per switch, both sides) and each ISO's disclosure policy."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.sdk import ENGINE, tenant_table_sql

ID = "2026-12-05T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "merchant switch records and ISO policy"


async def _create() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None
    await transaction.connection.execute(
        """
        CREATE TABLE merchant_switch_record (
            id varchar(40) PRIMARY KEY,
            iso_id varchar(40) NOT NULL REFERENCES portal_iso (id) ON DELETE CASCADE,
            from_merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id) ON DELETE CASCADE,
            from_customer_id varchar(40) NOT NULL REFERENCES portal_customer (id) ON DELETE CASCADE,
            to_merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id) ON DELETE CASCADE,
            to_customer_id varchar(40) NOT NULL REFERENCES portal_customer (id) ON DELETE CASCADE,
            link_id varchar(40) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            landed_at timestamptz
        );
        CREATE UNIQUE INDEX merchant_switch_record_link ON merchant_switch_record (to_merchant_id, link_id);
        CREATE INDEX merchant_switch_record_iso ON merchant_switch_record (iso_id);
        CREATE TABLE merchant_switch_iso_policy (
            iso_id varchar(40) PRIMARY KEY REFERENCES portal_iso (id) ON DELETE CASCADE,
            disclose_merchant_names boolean NOT NULL DEFAULT false,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """
        + tenant_table_sql("merchant_switch_record", privileges="SELECT, INSERT, UPDATE")
        + tenant_table_sql("merchant_switch_iso_policy", privileges="SELECT, INSERT, UPDATE")
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="merchant_switch", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
