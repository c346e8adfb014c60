"""A customer's language: the one their last link named or they chose, for emails sent later."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE

ID = "2026-12-05T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer locale"


async def _add() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "piccolo runs each migration in a transaction"
    await transaction.connection.execute("ALTER TABLE portal_customer ADD COLUMN locale varchar(35) NULL DEFAULT NULL")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_add)
    return manager
