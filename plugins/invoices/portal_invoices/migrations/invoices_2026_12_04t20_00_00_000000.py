"""Invoice PDFs as issued (kept, never rendered again) and the pay form's one-use attempt keys."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.sdk import ENGINE, tenant_table_sql

ID = "2026-12-04T20:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "invoice PDFs and pay attempt keys"


async def _create() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None
    await transaction.connection.execute(
        """
        CREATE TABLE invoices_pdf (
            invoice_id varchar(40) NOT NULL REFERENCES portal_billing_invoice (id),
            kind varchar(10) NOT NULL CHECK (kind IN ('issued', 'paid')),
            iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
            merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),
            content bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (invoice_id, kind)
        );
        CREATE TABLE invoices_pay_key (
            key varchar(64) PRIMARY KEY,
            iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
            merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),
            customer_id varchar(40) NOT NULL REFERENCES portal_customer (id),
            invoice_id varchar(40) NOT NULL REFERENCES portal_billing_invoice (id),
            attempt_id varchar(40),
            outcome varchar(20),
            message text,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        """
        + tenant_table_sql("invoices_pdf", privileges="SELECT, INSERT")
        + tenant_table_sql("invoices_pay_key", privileges="SELECT, INSERT, UPDATE")
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="invoices", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
