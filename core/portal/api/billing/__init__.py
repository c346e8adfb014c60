"""The merchant API of the billing ledger: products, prices, subscriptions, invoices, cards on file, test clocks.

Each controller answers the ledger's refusals (``portal.billing.errors.BillingError``) as problem
documents with the refusal's ``code`` (404 for ids the key cannot reach, 409 for a change the
object's state refuses, 422 otherwise) and a body that does not match its schema with 422 naming
the field. Every write runs in one tenant transaction, so an error leaves nothing written.
"""

from __future__ import annotations

from portal.api.billing.catalog import PriceController, ProductController
from portal.api.billing.invoices import InvoiceController
from portal.api.billing.payment_methods import PaymentMethodController
from portal.api.billing.subscriptions import SubscriptionController
from portal.api.billing.test_clock import TestClockController

BILLING_CONTROLLERS = (
    ProductController,
    PriceController,
    SubscriptionController,
    InvoiceController,
    PaymentMethodController,
    TestClockController,
)
"""Registered under ``/api/v1`` by :func:`portal.api.router.api_router`."""

__all__ = ["BILLING_CONTROLLERS"]
