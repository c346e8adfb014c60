"""Core's payment tables known to piccolo: cards on file (``portal_payment_method``)."""

from piccolo.columns import Boolean, ForeignKey, SmallInt, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.tenancy.tables import Customer, Iso, Merchant


class PaymentMethodTable(Table, tablename="portal_payment_method"):
    """A card on file: a gateway vault reference and what may be shown of the card.

    Removed cards keep their row (``removed_at``) for the audit trail. Created by the core
    migration ``2026-12-04T10:00:00:000000`` (which took over the cards plugin's
    ``cards_payment_method``); read and written through :mod:`portal.payments.methods`.
    """

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False)
    merchant_id = ForeignKey(references=Merchant, null=False)
    customer_id = ForeignKey(references=Customer, null=False)
    gateway = Varchar(length=40)
    vault_id = Varchar(length=100)
    billing_id = Varchar(length=100)
    brand = Varchar(length=20)
    last4 = Varchar(length=4)
    exp_month = SmallInt()
    exp_year = SmallInt()
    is_default = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    removed_at = Timestamptz(null=True, default=None)


PAYMENT_TABLES: tuple[type[Table], ...] = (PaymentMethodTable,)
