"""The example plugin's own table."""

from piccolo.columns import ForeignKey, Text, Varchar
from piccolo.table import Table

from portal.tenancy.tables import Customer, Iso


class ExampleNote(Table, tablename="example_note"):
    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False)
    customer_id = ForeignKey(references=Customer, null=False)
    body = Text()
