"""The billing ledger: products, prices, subscriptions, invoices and their lines, payment attempts.

Also the per-merchant invoice number counter, test clocks (sandbox merchants) and the stored
answers of idempotent API requests. Every table is tenant-owned (``iso_id``, row-level security
from ``tenant_table_sql``); amounts are integer minor units, never floats.

The application role gets no DELETE on ledger tables: invoices, attempts and subscriptions keep
their rows (voided, canceled); only idempotency keys expire and are deleted.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import tenant_table_sql

ID = "2026-12-04T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "billing ledger: products, prices, subscriptions, invoices, payment attempts, clocks, idempotency"

TENANT = """
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
    merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),"""

TABLES = f"""
CREATE TABLE portal_billing_product (
    id varchar(40) PRIMARY KEY,{TENANT}
    name varchar(200) NOT NULL CHECK (length(name) > 0),
    description varchar(2000) NOT NULL DEFAULT '',
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_billing_product_list ON portal_billing_product (merchant_id, id DESC);

CREATE TABLE portal_billing_price (
    id varchar(40) PRIMARY KEY,{TENANT}
    product_id varchar(40) NOT NULL REFERENCES portal_billing_product (id),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    unit_amount bigint NOT NULL CHECK (unit_amount >= 0),
    interval varchar(8) NOT NULL CHECK (interval IN ('day', 'week', 'month', 'year')),
    interval_count integer NOT NULL CHECK (interval_count BETWEEN 1 AND 1095),
    active boolean NOT NULL DEFAULT true,
    nickname varchar(200),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_billing_price_list ON portal_billing_price (merchant_id, id DESC);
CREATE INDEX portal_billing_price_product ON portal_billing_price (product_id);

CREATE TABLE portal_billing_subscription (
    id varchar(40) PRIMARY KEY,{TENANT}
    customer_id varchar(40) NOT NULL REFERENCES portal_customer (id),
    price_id varchar(40) NOT NULL REFERENCES portal_billing_price (id),
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    status varchar(16) NOT NULL
        CHECK (status IN ('trialing', 'active', 'past_due', 'paused', 'canceled', 'unpaid')),
    current_period_start timestamptz NOT NULL,
    current_period_end timestamptz NOT NULL,
    billing_anchor timestamptz NOT NULL,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    canceled_at timestamptz,
    cancellation_reason varchar(200),
    cancellation_comment varchar(2000),
    pause_reason varchar(200),
    paused_at timestamptz,
    resumes_at timestamptz,
    default_payment_method varchar(40),
    trial_end timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (current_period_end > current_period_start)
);
CREATE INDEX portal_billing_subscription_due
    ON portal_billing_subscription (current_period_end)
    WHERE status IN ('trialing', 'active', 'past_due', 'paused');
CREATE INDEX portal_billing_subscription_resumes
    ON portal_billing_subscription (resumes_at) WHERE status = 'paused' AND resumes_at IS NOT NULL;
CREATE INDEX portal_billing_subscription_by_customer
    ON portal_billing_subscription (merchant_id, customer_id, id DESC);
CREATE INDEX portal_billing_subscription_by_status
    ON portal_billing_subscription (merchant_id, status, id DESC);
CREATE INDEX portal_billing_subscription_list ON portal_billing_subscription (merchant_id, id DESC);

CREATE TABLE portal_billing_invoice (
    id varchar(40) PRIMARY KEY,{TENANT}
    customer_id varchar(40) NOT NULL REFERENCES portal_customer (id),
    subscription_id varchar(40) REFERENCES portal_billing_subscription (id),
    number varchar(40) CHECK (number ~ '^INV-[0-9]{{4,}}$'),
    status varchar(16) NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    subtotal bigint NOT NULL DEFAULT 0,
    tax bigint NOT NULL DEFAULT 0 CHECK (tax >= 0),
    total bigint NOT NULL DEFAULT 0,
    amount_paid bigint NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    amount_due bigint NOT NULL DEFAULT 0 CHECK (amount_due >= 0),
    hosted boolean NOT NULL DEFAULT false,
    issued_at timestamptz,
    due_at timestamptz,
    paid_at timestamptz,
    voided_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'draft') = (number IS NULL))
);
CREATE UNIQUE INDEX portal_billing_invoice_number ON portal_billing_invoice (merchant_id, number);
CREATE INDEX portal_billing_invoice_by_customer ON portal_billing_invoice (merchant_id, customer_id, id DESC);
CREATE INDEX portal_billing_invoice_by_status ON portal_billing_invoice (merchant_id, status, id DESC);
CREATE INDEX portal_billing_invoice_list ON portal_billing_invoice (merchant_id, id DESC);
CREATE INDEX portal_billing_invoice_subscription ON portal_billing_invoice (subscription_id, id DESC)
    WHERE subscription_id IS NOT NULL;
CREATE INDEX portal_billing_invoice_collectable
    ON portal_billing_invoice (due_at) WHERE status = 'open';

CREATE TABLE portal_billing_invoice_line (
    id varchar(40) PRIMARY KEY,{TENANT}
    invoice_id varchar(40) NOT NULL REFERENCES portal_billing_invoice (id),
    position integer NOT NULL CHECK (position >= 0),
    description varchar(500) NOT NULL,
    price_id varchar(40) REFERENCES portal_billing_price (id),
    quantity integer NOT NULL CHECK (quantity >= 1),
    unit_amount bigint NOT NULL,
    amount bigint NOT NULL,
    period_start timestamptz,
    period_end timestamptz,
    proration boolean NOT NULL DEFAULT false,
    CHECK (proration OR (unit_amount >= 0 AND amount >= 0))
);
CREATE UNIQUE INDEX portal_billing_invoice_line_position ON portal_billing_invoice_line (invoice_id, position);

CREATE TABLE portal_billing_invoice_counter (
    merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),
    series varchar(20) NOT NULL,
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
    next_number bigint NOT NULL CHECK (next_number >= 1),
    PRIMARY KEY (merchant_id, series)
);
COMMENT ON TABLE portal_billing_invoice_counter IS
    'Next document number per merchant and series (invoice: INV-1001 onwards), locked while numbering.';

CREATE TABLE portal_billing_payment_attempt (
    id varchar(40) PRIMARY KEY,{TENANT}
    invoice_id varchar(40) NOT NULL REFERENCES portal_billing_invoice (id),
    attempt_number integer NOT NULL CHECK (attempt_number >= 1),
    payment_method_id varchar(40) NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    order_id varchar(100) NOT NULL,
    outcome varchar(16) CHECK (outcome IN ('approved', 'declined', 'error')),
    classification varchar(16) CHECK (classification IN ('approved', 'retryable', 'final')),
    response_code integer,
    response_text varchar(500),
    transaction_id varchar(100),
    attempted_at timestamptz NOT NULL,
    resolved_at timestamptz,
    CHECK ((outcome IS NULL) = (classification IS NULL))
);
CREATE UNIQUE INDEX portal_billing_payment_attempt_number
    ON portal_billing_payment_attempt (invoice_id, attempt_number);
CREATE UNIQUE INDEX portal_billing_payment_attempt_order ON portal_billing_payment_attempt (merchant_id, order_id);
CREATE INDEX portal_billing_payment_attempt_unresolved
    ON portal_billing_payment_attempt (attempted_at) WHERE outcome IS NULL;

CREATE TABLE portal_billing_clock (
    id varchar(40) PRIMARY KEY,
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
    merchant_id varchar(40) NOT NULL REFERENCES portal_merchant (id),
    now timestamptz NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX portal_billing_clock_active ON portal_billing_clock (merchant_id) WHERE active;
COMMENT ON TABLE portal_billing_clock IS
    'Test clocks of sandbox merchants: the active row is the merchant''s "now"; detached clocks stay inactive.';

CREATE TABLE portal_idempotency_key (
    iso_id varchar(40) NOT NULL REFERENCES portal_iso (id),
    merchant_id varchar(40) REFERENCES portal_merchant (id),
    key_hash varchar(64) NOT NULL,
    method varchar(10) NOT NULL,
    path varchar(2000) NOT NULL,
    body_hash varchar(64) NOT NULL,
    status_code integer CHECK (status_code BETWEEN 100 AND 599),
    response jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (iso_id, key_hash)
);
CREATE INDEX portal_idempotency_key_expiry ON portal_idempotency_key (created_at);
"""

LEDGER = (
    "portal_billing_product",
    "portal_billing_price",
    "portal_billing_subscription",
    "portal_billing_invoice",
    "portal_billing_invoice_line",
    "portal_billing_invoice_counter",
    "portal_billing_payment_attempt",
    "portal_billing_clock",
)


async def _apply() -> None:
    transaction = ENGINE.current_transaction.get()
    assert transaction is not None, "migrations run inside a transaction"
    statements = [TABLES]
    statements += [tenant_table_sql(table, privileges="SELECT, INSERT, UPDATE") for table in LEDGER]
    statements.append(tenant_table_sql("portal_idempotency_key"))
    await transaction.connection.execute("\n".join(statements))


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
