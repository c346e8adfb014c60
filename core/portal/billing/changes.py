"""Changing a subscription's price or quantity, billed exactly as :func:`portal.billing.proration.preview_change` shows.

Apart from :mod:`portal.billing.subscriptions` because it builds on the proration preview, which
itself reads subscriptions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portal.billing import invoices, proration, subscriptions
from portal.billing.models import Invoice, LineInput, ProrationBehavior, Subscription
from portal.events.bus import Actor
from portal.tenancy.models import Tenant


async def change(
    tenant: Tenant,
    subscription_id: str,
    *,
    price_id: str | None = None,
    quantity: int | None = None,
    proration_behavior: ProrationBehavior = "create_prorations",
    proration_date: datetime | None = None,
    now: datetime,
    actor: Actor,
) -> Subscription:
    """Move to another price and/or quantity.

    ``none`` bills nothing for the rest of the period; ``create_prorations`` puts the lines of
    :func:`portal.billing.proration.preview_change` on the subscription's draft, billed with the
    next renewal; ``always_invoice`` bills them now (a finalized invoice the engine charges). A
    price with another interval restarts the period at ``now`` and is billed at once.

    ``proration_date`` (as Stripe's) prorates as of that time instead of ``now``: a preview made
    with ``at=proration_date`` is then billed to the cent, however long the customer took to confirm.
    """
    subscription = await subscriptions.get(tenant, subscription_id, lock=True)
    subscriptions.check_transition(subscription, "change")
    at = proration_date or now
    preview = await proration.preview_change(tenant, subscription_id, price_id=price_id, quantity=quantity, at=at)
    new_price = preview.price
    restart = preview.restarts_period
    changes: dict[str, Any] = {"price_id": new_price.id, "quantity": preview.quantity}
    if restart:
        changes |= {"current_period_start": at, "current_period_end": preview.period_end, "billing_anchor": at}
    updated = await subscriptions._update(tenant, subscription_id, now, **changes)
    invoice: Invoice | None = None
    lines = [
        LineInput(
            description=line.description, quantity=line.quantity, unit_amount=line.unit_amount, amount=line.amount,
            period_start=line.period_start, period_end=line.period_end, proration=line.proration,
        )
        for line in preview.lines
        if restart or proration_behavior != "none"
    ]  # fmt: skip
    if lines and (restart or proration_behavior == "always_invoice"):
        draft = await subscriptions.pending_draft(tenant, subscription_id)
        if draft is None:
            draft = await invoices.create(
                tenant, customer_id=subscription.customer, currency=new_price.currency, lines=lines,
                subscription_id=subscription_id, hosted=False, now=now, actor=actor,
            )  # fmt: skip
        else:
            draft = await invoices.add_lines(tenant, draft.id, lines)
        invoice = await invoices.finalize(tenant, draft.id, now=now, actor=actor, draft=draft)
    elif lines:
        draft = await subscriptions.pending_draft(tenant, subscription_id)
        if draft is None:
            await invoices.create(
                tenant, customer_id=subscription.customer, currency=new_price.currency, lines=lines,
                subscription_id=subscription_id, hosted=False, now=now, actor=actor,
            )  # fmt: skip
        else:
            await invoices.add_lines(tenant, draft.id, lines)
    await subscriptions._emit(
        tenant, "subscription.updated", updated, actor, previous=subscription.status,
        invoice=invoice.id if invoice else None, before=subscription,
    )  # fmt: skip
    return updated
