"""The sandbox payment gateway: payment tokens, its customer vault and its transactions."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import tenant_table_sql

ID = "2026-11-26T09:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sandbox gateway: tokens, vault, transactions"

BEHAVIOURS = "('approve', 'insufficient_funds', 'expired_card', 'processor_error', 'decline_after_attach')"

TABLES = f"""
CREATE TABLE portal_sandbox_token (
    token_hash bytea PRIMARY KEY,
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id) ON DELETE CASCADE,
    merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id) ON DELETE CASCADE,
    brand varchar(20) NOT NULL,
    last4 varchar(4) NOT NULL,
    exp_month smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year smallint NOT NULL,
    behaviour varchar(32) NOT NULL CHECK (behaviour IN {BEHAVIOURS}),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX portal_sandbox_token_expiry ON portal_sandbox_token (merchant_id, expires_at);
COMMENT ON TABLE portal_sandbox_token IS
    'Single-use payment tokens of the sandbox gateway, by SHA-256 of the token; never a card number.';

CREATE TABLE portal_sandbox_vault (
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id) ON DELETE CASCADE,
    merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id) ON DELETE CASCADE,
    vault_id varchar(64) NOT NULL,
    customer_id varchar(200) NOT NULL,
    email varchar(254) NOT NULL,
    name varchar(200) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, vault_id)
);
CREATE INDEX portal_sandbox_vault_iso ON portal_sandbox_vault (iso_id);

CREATE TABLE portal_sandbox_billing (
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id) ON DELETE CASCADE,
    merchant_id varchar(40) NOT NULL,
    vault_id varchar(64) NOT NULL,
    billing_id varchar(200) NOT NULL,
    brand varchar(20) NOT NULL,
    last4 varchar(4) NOT NULL,
    exp_month smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year smallint NOT NULL,
    behaviour varchar(32) NOT NULL CHECK (behaviour IN {BEHAVIOURS}),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, vault_id, billing_id),
    FOREIGN KEY (merchant_id, vault_id) REFERENCES portal_sandbox_vault (merchant_id, vault_id) ON DELETE CASCADE
);
CREATE INDEX portal_sandbox_billing_iso ON portal_sandbox_billing (iso_id);

CREATE TABLE portal_sandbox_transaction (
    id varchar(64) PRIMARY KEY,
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id) ON DELETE CASCADE,
    merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id) ON DELETE CASCADE,
    order_id varchar(200) NOT NULL,
    vault_id varchar(64) NOT NULL,
    billing_id varchar(200) NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    outcome varchar(16) NOT NULL CHECK (outcome IN ('approved', 'declined', 'error')),
    response_code integer NOT NULL,
    response_text varchar(200) NOT NULL,
    authorization_code varchar(16),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX portal_sandbox_transaction_approved_order
    ON portal_sandbox_transaction (merchant_id, order_id) WHERE outcome = 'approved';
CREATE INDEX portal_sandbox_transaction_order ON portal_sandbox_transaction (merchant_id, order_id);
CREATE INDEX portal_sandbox_transaction_iso ON portal_sandbox_transaction (iso_id);
COMMENT ON TABLE portal_sandbox_transaction IS
    'Sales on the sandbox gateway; at most one approved per merchant and order id, so an order is charged once.';
"""


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    statements = [
        TABLES,
        tenant_table_sql("portal_sandbox_token"),
        tenant_table_sql("portal_sandbox_vault"),
        tenant_table_sql("portal_sandbox_billing"),
        tenant_table_sql("portal_sandbox_transaction", privileges="SELECT, INSERT"),
    ]
    await transaction.connection.execute("\n".join(statements))


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
