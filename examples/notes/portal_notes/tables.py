"""The notes table: the one source of its schema (`portal plugin migration notes` writes the migrations)."""

from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.table import Table

from portal.sdk import Customer, Iso, Merchant


class Note(Table, tablename="notes_note"):
    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False)
    merchant_id = ForeignKey(references=Merchant, null=False)
    customer_id = ForeignKey(references=Customer, null=False)
    body = Text()
    created_at = Timestamptz()
