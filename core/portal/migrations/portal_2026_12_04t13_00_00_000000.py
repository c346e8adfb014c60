"""Customers' billing details: the name, postal address and tax id shown on invoices.

One row per customer (absent until first written). Tenant-owned like every other table:
``iso_id`` with forced row-level security; the application role may read, insert and update.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import tenant_table_sql

ID = "2026-12-04T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customers' billing details: name, address, tax id"

TABLE = """
CREATE TABLE portal_customer_billing (
    customer_id varchar(40) PRIMARY KEY REFERENCES portal_customer (id) ON DELETE CASCADE,
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
    merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),
    name varchar(200),
    line1 varchar(200),
    line2 varchar(200),
    city varchar(100),
    postal_code varchar(20),
    state varchar(100),
    country char(2) CHECK (country ~ '^[A-Z]{2}$'),
    tax_id varchar(40),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_customer_billing_merchant ON portal_customer_billing (merchant_id);
"""


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    sql = TABLE + tenant_table_sql("portal_customer_billing", privileges="SELECT, INSERT, UPDATE")
    await transaction.connection.execute(sql)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
