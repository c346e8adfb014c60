"""The billing ledger: products, prices, subscriptions, invoices, payment attempts and test clocks.

Core owns it so renewals and charges go on whatever features a merchant shows. Each module has
one job: :mod:`~portal.billing.money` (minor units and currencies), :mod:`~portal.billing.calendar`
(billing periods), :mod:`~portal.billing.models` (the Structs), :mod:`~portal.billing.events`
(event types and payloads), :mod:`~portal.billing.catalog` (products and prices),
:mod:`~portal.billing.subscriptions`, :mod:`~portal.billing.invoices`,
:mod:`~portal.billing.charges` (paying an invoice at the gateway), :mod:`~portal.billing.proration`
and :mod:`~portal.billing.clock` (test clocks). See ``docs/billing.md``.
"""
