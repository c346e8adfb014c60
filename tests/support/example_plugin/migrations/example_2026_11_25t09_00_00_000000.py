from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import tenant_table_sql

ID = "2026-11-25T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "example notes"


async def _create() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None
    await transaction.connection.execute(
        """
        CREATE TABLE example_note (
            id varchar(40) PRIMARY KEY,
            iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
            customer_id varchar(40) NOT NULL REFERENCES portal_customer (id),
            body text NOT NULL
        );
        """
        + tenant_table_sql("example_note")
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="example", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
