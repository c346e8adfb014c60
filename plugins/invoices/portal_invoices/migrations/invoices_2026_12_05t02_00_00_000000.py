"""Kept invoice PDFs per language: one per (invoice, kind, language), the ones kept so far English."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.sdk import ENGINE

ID = "2026-12-05T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "kept invoice PDFs per language"


async def _alter() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None
    await transaction.connection.execute(
        """
        ALTER TABLE invoices_pdf ADD COLUMN language varchar(10) NOT NULL DEFAULT 'en';
        ALTER TABLE invoices_pdf ALTER COLUMN language DROP DEFAULT;
        ALTER TABLE invoices_pdf DROP CONSTRAINT invoices_pdf_pkey;
        ALTER TABLE invoices_pdf ADD PRIMARY KEY (invoice_id, kind, language);
        """
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="invoices", description=DESCRIPTION)
    manager.add_raw(_alter)
    return manager
