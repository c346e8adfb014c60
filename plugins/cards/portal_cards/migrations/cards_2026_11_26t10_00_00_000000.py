"""Cards on file: this migration once created ``cards_payment_method``; it now does nothing.

The table moved to core. The core migration ``2026-12-04T10:00:00:000000`` renames an existing
``cards_payment_method`` (every row and id kept) to ``portal_payment_method``, or creates
``portal_payment_method`` on a database that never had it; core migrations run before the
plugins'. This migration keeps its id so that databases which ran it see nothing pending, and
fresh databases record it without creating anything.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-26T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "cards on file (the table is core's portal_payment_method now; nothing to do)"


async def forwards() -> MigrationManager:
    return MigrationManager(migration_id=ID, app_name="cards", description=DESCRIPTION)
