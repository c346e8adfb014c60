"""The cards plugin's update flow, as recovery extends it: name what failed, then retry with the new card.

The update link lands on the cards plugin's ``/payment-methods/update``. Through the cards
plugin's hooks this module names the failed charge on that page and, once the customer saved a
card (now the default), charges every invoice of the customer in recovery at once through the
ledger's ``pay_invoices`` (one claim per invoice: two clicks on *Save* charge once).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request

from portal.sdk import (
    BillingError,
    CustomerView,
    MerchantView,
    Tenant,
    billing_charges,
    customer_actor,
    merchant_now,
    platform_of,
    tenant_transaction,
)
from portal_payment_recovery import outcomes, store
from portal_payment_recovery.wording import describe, join_phrases

log = logging.getLogger(__name__)

DONE_PATH = "/payment-recovery/done"
DECLINED_PATH = "/payment-recovery/declined"


async def failed_charges(merchant: MerchantView, customer_id: str) -> str | None:
    """The customer's charges in recovery as one phrase (inside the tenant transaction)."""
    return join_phrases(await describe(merchant, await store.open_cases(merchant.id, customer_id)))


def _reason(results: list[Any]) -> str:
    """Why the new card did not pay, as a key of :data:`portal_payment_recovery.pages.DECLINES`."""
    for result in results:
        if isinstance(result, BillingError):
            return {"no_payment_method": "no_card"}.get(result.code, "processor")
        if isinstance(result, Exception):
            return "processor"
        if result.classification == "final":
            return "final"
    return "declined"


async def retry_with_new_card(
    request: Request[Any, Any, Any], tenant: Tenant, customer: CustomerView, card_id: str, link_id: str | None
) -> str | None:
    """Charge the customer's invoices in recovery to ``card_id``; the page to show, or ``None`` when none is."""
    platform, merchant = platform_of(request), tenant.merchant
    async with tenant_transaction(merchant.iso_id):
        cases = await store.open_cases(merchant.id, customer.id)
    if not cases:
        return None
    actor = customer_actor(request, customer.id)
    requests = [
        billing_charges.PayRequest(tenant=tenant, invoice_id=case.invoice_id, payment_method_id=card_id)
        for case in cases
    ]
    results = await billing_charges.pay_invoices(platform, requests, actor=actor)
    async with tenant_transaction(merchant.iso_id):
        now = await merchant_now(merchant.id)
        for case, result in zip(cases, results, strict=True):
            if isinstance(result, BillingError) and result.code in ("invalid_transition", "nothing_due"):
                found = await store.get(merchant.id, case.id, lock=True)  # paid meanwhile (another click)
                if found and found.status == "open":
                    await outcomes.settle(
                        platform, tenant, found, via="card_update", now=now, actor=actor, link_id=link_id
                    )
                continue
            if isinstance(result, Exception) and not isinstance(result, BillingError):
                log.error("recovery charge of %s failed: %s", case.invoice_id, result)
                continue
            await outcomes.record_charge(
                platform, tenant, case.id, result, trigger="card_update", now=now, actor=actor, link_id=link_id
            )
        remaining = await store.open_cases(merchant.id, customer.id)
    if remaining:
        failed = [result for case, result in zip(cases, results, strict=True) if case.id in {c.id for c in remaining}]
        return f"{DECLINED_PATH}?reason={_reason(failed)}"
    return DONE_PATH
