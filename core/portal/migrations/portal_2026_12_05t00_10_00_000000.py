"""The sandbox's sixth test card: 4000 0000 0000 0259 goes on file, and every charge of it is a "stop recurring" decline."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE

ID = "2026-12-05T00:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sandbox: stop_recurring_after_attach behaviour"

BEHAVIOURS = (
    "('approve', 'insufficient_funds', 'expired_card', 'processor_error', 'decline_after_attach', "
    "'stop_recurring_after_attach')"
)

WIDEN = "".join(
    f"""
ALTER TABLE {table} DROP CONSTRAINT {table}_behaviour_check;
ALTER TABLE {table} ADD CONSTRAINT {table}_behaviour_check CHECK (behaviour IN {BEHAVIOURS});
"""
    for table in ("portal_sandbox_token", "portal_sandbox_billing")
)


async def _widen() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "piccolo runs each migration in a transaction"
    await transaction.connection.execute(WIDEN)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_widen)
    return manager
