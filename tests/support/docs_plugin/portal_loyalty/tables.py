"""The loyalty plugin's tables (the docs' examples query them; `portal plugin migration` wrote the migration)."""

from piccolo.columns import ForeignKey, Integer, Timestamptz, Varchar
from piccolo.table import Table

from portal.sdk import Customer, Iso, Merchant


class LoyaltyAccount(Table, tablename="loyalty_account"):
    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False)
    merchant_id = ForeignKey(references=Merchant, null=False)
    customer_id = ForeignKey(references=Customer, null=False)
    points = Integer()
    last_activity = Timestamptz()


class LoyaltyPoints(Table, tablename="loyalty_points"):
    id = Varchar(length=60, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False)
    customer_id = ForeignKey(references=Customer, null=False)
    points = Integer()
