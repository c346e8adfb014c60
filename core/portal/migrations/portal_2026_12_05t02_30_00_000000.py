"""A merchant's optional accent colour, next to the brand colour and checked the same way."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE

ID = "2026-12-05T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "merchant accent colour"


async def _add() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "piccolo runs each migration in a transaction"
    await transaction.connection.execute(
        "ALTER TABLE portal_merchant ADD COLUMN accent_color varchar(7) NULL DEFAULT NULL"
        " CONSTRAINT portal_merchant_accent_color_check CHECK (accent_color ~ '^#[0-9a-fA-F]{6}$')"
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_add)
    return manager
