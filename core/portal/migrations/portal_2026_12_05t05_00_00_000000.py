"""Due work per ISO: the claims of tasks, webhook deliveries and event handlers read one index in order.

A worker claims the earliest due rows of one ISO (row-level security adds ``iso_id``). With only
``(next_attempt_at) WHERE status = 'pending'``, a planner whose statistics predate a burst (a
hundred thousand renewals queued at once, autovacuum not yet run) combined it with the ISO index
and sorted every due row for each claim of a hundred; ``(iso_id, next_attempt_at)`` gives the
rows in order whatever the statistics say.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE

ID = "2026-12-05T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "due work per ISO"


async def _add() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "piccolo runs each migration in a transaction"
    for table in ("portal_task", "portal_webhook_delivery", "portal_event_handling"):
        await transaction.connection.execute(
            f"CREATE INDEX {table}_iso_due ON {table} (iso_id, next_attempt_at) WHERE status = 'pending'"
        )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_add)
    return manager
