"""Recovery cases (one per failed invoice) and the update links their emails carried."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.sdk import ENGINE, tenant_table_sql

ID = "2026-12-05T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "recovery cases and their links"


async def _create() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None
    await transaction.connection.execute(
        """
        CREATE TABLE recovery_case (
            id varchar(40) PRIMARY KEY,
            iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
            merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),
            customer_id varchar(40) NOT NULL REFERENCES portal_customer (id),
            invoice_id varchar(40) NOT NULL REFERENCES portal_billing_invoice (id),
            subscription_id varchar(40),
            amount bigint NOT NULL CHECK (amount >= 0),
            currency varchar(3) NOT NULL,
            cause varchar(4) NOT NULL CHECK (cause IN ('soft', 'hard')),
            status varchar(10) NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'recovered', 'exhausted')),
            failed_at timestamptz NOT NULL,
            planned boolean NOT NULL DEFAULT false,
            retries integer NOT NULL DEFAULT 0,
            next_retry_at timestamptz,
            emails integer NOT NULL DEFAULT 0,
            next_email_at timestamptz,
            resolved_at timestamptz,
            recovered_amount bigint,
            recovered_link_id varchar(40),
            UNIQUE (merchant_id, invoice_id)
        );
        CREATE INDEX recovery_case_open ON recovery_case (iso_id, merchant_id) WHERE status = 'open';
        CREATE INDEX recovery_case_customer ON recovery_case (merchant_id, customer_id, status);
        CREATE INDEX recovery_case_failed ON recovery_case (merchant_id, failed_at);
        CREATE TABLE recovery_link (
            link_id varchar(40) PRIMARY KEY,
            iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
            merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),
            case_id varchar(40) NOT NULL REFERENCES recovery_case (id),
            sent_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX recovery_link_case ON recovery_link (case_id);
        """
        + tenant_table_sql("recovery_case", privileges="SELECT, INSERT, UPDATE")
        + tenant_table_sql("recovery_link", privileges="SELECT, INSERT")
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="payment_recovery", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
