"""Proration: what changing a subscription's price or quantity costs, to the second.

For the rest of the current period ``[at, end)``, as a fraction ``f = (end - at) / (end - start)``
in seconds: a credit for the unused time on the old price and quantity (``-old * f``) and a
charge for the remaining time on the new ones (``+new * f``). The exact net amount is rounded
once (halves away from zero) to minor units; the credit line is the exact credit rounded the
same way, and the charge line is the net minus the credit, so the lines always add up to the
rounded net. A price with another interval restarts the period at ``at``: the credit as above
and a full period of the new price.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import msgspec

from portal.billing import subscriptions
from portal.billing.calendar import add_periods
from portal.billing.catalog import get_price, get_product
from portal.billing.errors import BillingError
from portal.billing.models import InvoiceLine, Price, Subscription
from portal.billing.money import round_half_up
from portal.ids import new_id
from portal.tenancy.models import Tenant

PRORATED: frozenset[str] = frozenset({"active", "past_due"})
"""Statuses whose current period was paid for (or is being collected) and so is prorated."""


class ProrationPreview(msgspec.Struct, frozen=True, kw_only=True):
    """The lines a change bills and what is due now if they are invoiced at once (never negative)."""

    lines: list[InvoiceLine]
    amount_due_now: int
    currency: str
    price: Price
    """The price after the change."""
    quantity: int
    restarts_period: bool
    """The new price has another interval: the period restarts at the change."""
    period_end: datetime
    """The end of the period after the change."""


def _fraction(subscription: Subscription, at: datetime) -> Fraction:
    start, end = subscription.current_period_start, subscription.current_period_end
    total = int((end - start).total_seconds())
    remaining = int((end - at).total_seconds())
    return Fraction(max(0, min(remaining, total)), total)


def _day(at: datetime, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz)).strftime("%d %b %Y").lstrip("0")


def _label(quantity: int, name: str) -> str:
    return f"{quantity} \u00d7 {name}" if quantity > 1 else name


def _line(description: str, quantity: int, amount: int, start: datetime, end: datetime, proration: bool) -> InvoiceLine:
    if amount % quantity:  # not a whole amount per unit: one line of the whole amount
        quantity = 1
    return InvoiceLine(
        id=new_id("il"), description=description, quantity=quantity, unit_amount=amount // quantity,
        amount=amount, period_start=start, period_end=end, proration=proration,
    )  # fmt: skip


async def preview_change(
    tenant: Tenant,
    subscription_id: str,
    *,
    price_id: str | None = None,
    quantity: int | None = None,
    at: datetime,
) -> ProrationPreview:
    """The lines changing to ``price_id`` and/or ``quantity`` at ``at`` bills, and the amount due now.

    :func:`portal.billing.changes.change` bills exactly these lines (``create_prorations``
    with the next renewal, ``always_invoice`` at once). Refuses a price in another currency
    (``currency_mismatch``), an archived price (``inactive_price``) and a change that changes
    nothing (``no_change``).
    """
    subscription = await subscriptions.get(tenant, subscription_id)
    subscriptions.check_transition(subscription, "change")
    old = await get_price(tenant, subscription.price)
    new = old if price_id is None else await get_price(tenant, price_id)
    new_quantity = subscription.quantity if quantity is None else quantity
    subscriptions._check_quantity(new_quantity)
    if new.id != old.id and not new.active:
        raise BillingError("inactive_price", f"price {new.id} is archived")
    if new.currency != old.currency:
        raise BillingError("currency_mismatch", f"the subscription is billed in {old.currency}, not {new.currency}")
    if new.id == old.id and new_quantity == subscription.quantity:
        raise BillingError("no_change", "the subscription has this price and quantity already")
    if not subscription.current_period_start <= at <= subscription.current_period_end:
        raise BillingError("invalid_time", "a change happens within the current period")
    tz = tenant.merchant.timezone
    restarts = (new.interval, new.interval_count) != (old.interval, old.interval_count) and (
        subscription.status in PRORATED
    )
    end = subscription.current_period_end
    lines: list[InvoiceLine] = []
    if subscription.status in PRORATED:
        share = _fraction(subscription, at)
        old_name = (await get_product(tenant, old.product)).name
        new_name = (await get_product(tenant, new.product)).name
        exact_credit = Fraction(old.unit_amount * subscription.quantity) * share
        credit = round_half_up(exact_credit)
        since = _day(at, tz)
        if credit:
            lines.append(
                _line(f"Unused time on {_label(subscription.quantity, old_name)} after {since}",
                      subscription.quantity, -credit, at, end, True)
            )  # fmt: skip
        if restarts:
            end = add_periods(at, at, new.interval, new.interval_count, tz=tz)
            full = new.unit_amount * new_quantity
            lines.append(_line(_label(new_quantity, new_name), new_quantity, full, at, end, False))
        else:
            net = round_half_up(Fraction(new.unit_amount * new_quantity) * share - exact_credit)
            charge = net + credit
            if charge:
                lines.append(
                    _line(f"Remaining time on {_label(new_quantity, new_name)} after {since}",
                          new_quantity, charge, at, end, True)
                )  # fmt: skip
    total = sum(line.amount for line in lines)
    return ProrationPreview(
        lines=lines, amount_due_now=max(total, 0), currency=new.currency, price=new, quantity=new_quantity,
        restarts_period=restarts, period_end=end,
    )  # fmt: skip
