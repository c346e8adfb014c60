"""The invoice list's order: a customer's issued invoices, newest first, read from an index."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.sdk import ENGINE

ID = "2026-12-04T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "index of a customer's issued invoices by issue time"


async def _create() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None
    await transaction.connection.execute(
        "CREATE INDEX IF NOT EXISTS invoices_customer_issued ON portal_billing_invoice "
        "(merchant_id, customer_id, issued_at DESC, id DESC) WHERE number IS NOT NULL"
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="invoices", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
