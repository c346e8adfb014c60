"""The customer's invoice pages: list, detail (and its PDF), pay, payment history and receipts.

Every invoice id in a path is looked up among the signed-in customer's own issued invoices at
this merchant, so any other id answers 404 like a missing one.
"""

from __future__ import annotations

from portal_invoices.account_routes import billing_form, update_billing
from portal_invoices.pages import detail, history, list_invoices, receipt
from portal_invoices.pay_routes import pay, pay_card, pay_card_form, pay_form

INVOICE_ROUTES = [
    list_invoices,
    detail,
    history,
    receipt,
    pay_form,
    pay,
    pay_card_form,
    pay_card,
    billing_form,
    update_billing,
]
