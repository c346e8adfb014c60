"""Link purposes come from plugins: the purpose column accepts any declared name, not a fixed list.

Which purposes exist is decided by the loaded plugins (``portal_link_purposes``) and checked
when a link is issued and opened; the column keeps only the shape of a name.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE

ID = "2026-12-04T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "link purposes declared by plugins"

SQL = """
ALTER TABLE portal_link DROP CONSTRAINT portal_link_purpose_check;
ALTER TABLE portal_link ADD CONSTRAINT portal_link_purpose_check
    CHECK (purpose IS NULL OR purpose ~ '^[a-z_]{1,40}$');
"""


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    await transaction.connection.execute(SQL)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
