"""The cards plugin's table: a gateway vault reference and what may be shown of the card."""

from piccolo.columns import Boolean, ForeignKey, SmallInt, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.tenancy.tables import Customer, Iso, Merchant


class PaymentMethod(Table, tablename="cards_payment_method"):
    """A card on file. Removed cards keep their row (``removed_at``) for the audit trail."""

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
