"""Billing data of the demo merchants (``tenants/demo.toml``), made through the ledger itself.

``portal demo`` applies it after the tenant file (:func:`apply_demo_billing`). Jane Cooper at
Greenfield Bakery gets what the product page shows: two active subscriptions (the "Monthly
Bread Box" at $39 and the "Office Breakfast Plan"), twelve invoices ``INV-1106`` to ``INV-1117``
of which the last, $3,420 for holiday catering, is open and due in three weeks and the other
eleven are paid ($18,640 this year), every payment a sale on her sandbox Visa. Her *Recent
activity* reads, newest first, as the product page's: INV-1117 issued two days ago, the Bread Box
renewed the day before, and a $1,240 invoice paid the day before that. The other demo
merchants get less, and different: a SaaS plan at Pinnacle, a one-off parts order at Apex, a
club membership in pounds at Northwind.

Everything goes through production code with the times of the past: the card is vaulted at
the sandbox (:func:`portal.payments.methods.attach`), subscriptions are created and renewed
period by period (:mod:`portal.billing.subscriptions`) and every invoice is paid with
:func:`portal.billing.charges.pay_invoice`, so the events, payment attempts and sandbox sales
are all there. Dates are relative to today; so that they fall in this year, the history starts
at most about five months back.

Applying it again changes nothing: a merchant that has any product or invoice already is left alone.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from portal.billing import catalog, charges, invoices, subscriptions
from portal.billing.calendar import Interval
from portal.billing.models import LineInput
from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.events.bus import SYSTEM
from portal.payments import methods
from portal.payments.sandbox import store
from portal.payments.sandbox.cards import check_card
from portal.tenancy.models import CustomerView

if TYPE_CHECKING:
    from portal.platform import Platform
    from portal.tenancy.models import Tenant

log = logging.getLogger(__name__)

DEMO_CARD = "4111111111111111"
"""The sandbox's approving Visa test card."""


@dataclass(frozen=True)
class DemoSubscription:
    """A subscription started ``months`` months and ``days`` days before today (at 9:00 local time)."""

    customer: str
    product: str
    unit_amount: int
    months: int
    days: int
    interval: Interval = "month"
    nickname: str | None = None


@dataclass(frozen=True)
class DemoInvoice:
    """A one-off invoice issued ``days_ago`` days before today: paid then, or open and due in ``due_in_days``."""

    customer: str
    description: str
    unit_amount: int
    days_ago: int
    paid: bool
    quantity: int = 1
    due_in_days: int = 30


@dataclass(frozen=True)
class DemoMerchant:
    """What one merchant of the demo gets (all in ``currency``)."""

    slug: str
    currency: str
    first_number: int | None = None
    """The first invoice number (``INV-<n>``); ``None`` keeps the ledger's default."""
    subscriptions: list[DemoSubscription] = field(default_factory=list)
    invoices: list[DemoInvoice] = field(default_factory=list)


JANE = "jane@globalco.com"

DEMO: list[DemoMerchant] = [
    DemoMerchant(
        slug="greenfield",
        currency="USD",
        first_number=1106,
        subscriptions=[
            # Bread Box: 5 paid periods, the last renewed 3 days ago; Breakfast Plan: 4 paid periods
            DemoSubscription(customer=JANE, product="Monthly Bread Box", unit_amount=3900, months=4, days=3),
            DemoSubscription(customer=JANE, product="Office Breakfast Plan", unit_amount=289000, months=3, days=20),
        ],
        invoices=[
            DemoInvoice(
                customer=JANE, description="Summer open-house catering", unit_amount=564500, days_ago=95, paid=True
            ),
            DemoInvoice(
                customer=JANE,
                description="Anniversary cake and dessert table",
                unit_amount=124000,
                days_ago=4,
                paid=True,
            ),
            # 5 x $39 + 4 x $2,890 + $5,645 + $1,240 = $18,640 paid; then INV-1117, open:
            DemoInvoice(
                customer=JANE,
                description="Holiday catering, 120 guests",
                unit_amount=342000,
                days_ago=2,
                paid=False,
                due_in_days=21,
            ),
        ],
    ),
    DemoMerchant(
        slug="pinnacle",
        currency="USD",
        subscriptions=[
            DemoSubscription(
                customer=JANE, product="Pinnacle Pro", unit_amount=4900, months=2, days=3, nickname="Team"
            ),
        ],
    ),
    DemoMerchant(
        slug="apex",
        currency="USD",
        invoices=[
            DemoInvoice(
                customer=JANE,
                description="Brake pads and rotors, front axle",
                unit_amount=28450,
                days_ago=17,
                paid=True,
            ),
        ],
    ),
    DemoMerchant(
        slug="northwind",
        currency="GBP",
        subscriptions=[
            DemoSubscription(customer=JANE, product="Outfitters Club", unit_amount=1200, months=1, days=8),
        ],
        invoices=[
            # Open, so Northwind's portal (the summit theme) shows paying an invoice too.
            DemoInvoice(
                customer=JANE,
                description="Made-to-measure expedition parka",
                unit_amount=18500,
                days_ago=3,
                paid=False,
                due_in_days=14,
            ),
        ],
    ),
]


def months_before(day: date, months: int) -> date:
    """The same day of the month ``months`` months earlier (clamped to the month's last day)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


async def apply_demo_billing(platform: Platform, *, today: datetime | None = None) -> list[str]:
    """Give each demo merchant that exists and has no products yet its billing data; return what was done.

    Runs outside any transaction (payments call the sandbox between the ledger's transactions).
    """
    now = today or datetime.now(UTC)
    done: list[str] = []
    for plan in DEMO:
        tenant = await _tenant(platform, plan.slug)
        if tenant is None or not await _has_customers(tenant, plan):
            continue  # another tenants file: not the demo's merchant
        async with tenant_transaction(tenant.merchant.iso_id):
            existing = await fetch(
                "SELECT EXISTS (SELECT 1 FROM portal_billing_product WHERE merchant_id = $1) "
                "OR EXISTS (SELECT 1 FROM portal_billing_invoice WHERE merchant_id = $1) AS found",
                tenant.merchant.id,
            )
        if existing[0]["found"]:
            continue
        await _apply(platform, tenant, plan, now)
        done.append(plan.slug)
    if done:
        log.info("demo billing data for %s", ", ".join(done))
    return done


async def _tenant(platform: Platform, slug: str) -> Tenant | None:
    async with system_transaction():
        found = await fetch("SELECT * FROM portal_locate_merchant($1)", slug)
    if not found:
        return None
    tenant: Tenant | None = await platform.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
    return tenant


async def _has_customers(tenant: Tenant, plan: DemoMerchant) -> bool:
    emails = sorted({s.customer for s in plan.subscriptions} | {i.customer for i in plan.invoices})
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT count(*) AS n FROM portal_customer WHERE merchant_id = $1 AND email_normalized = ANY($2::text[])",
            tenant.merchant.id,
            emails,
        )
    return int(rows[0]["n"]) == len(emails)


async def _customer(tenant: Tenant, email: str) -> CustomerView:
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT id, merchant_id, email, name FROM portal_customer WHERE merchant_id = $1 AND email_normalized = $2",
            tenant.merchant.id,
            email.strip().lower(),
        )
    if not rows:
        raise LookupError(f"the demo customer {email} is not at {tenant.merchant.slug}")
    return CustomerView(
        id=rows[0]["id"], merchant_id=rows[0]["merchant_id"], email=rows[0]["email"], name=rows[0]["name"]
    )


async def _card_on_file(platform: Platform, tenant: Tenant, customer: CustomerView, now: datetime) -> None:
    """The sandbox Visa as the customer's default card (unless one is on file), vaulted as the hosted fields would."""
    merchant = tenant.merchant
    if await methods.default_method(merchant.iso_id, merchant.id, customer.id) is not None:
        return
    details = check_card(DEMO_CARD, f"12/{(now.year + 3) % 100:02d}", "123", today=now.date(), cvv_required=False)
    async with tenant_transaction(merchant.iso_id):
        token = await store.insert_token(
            merchant.iso_id, merchant.id, details, now=now, expires_at=now + timedelta(hours=1)
        )
    await methods.attach(platform.gateways, tenant, customer, token, make_default=True)


async def _apply(platform: Platform, tenant: Tenant, plan: DemoMerchant, now: datetime) -> None:
    merchant = tenant.merchant
    zone = ZoneInfo(merchant.timezone)
    local_today = now.astimezone(zone).date()
    customers = {email: await _customer(tenant, email) for email in {s.customer for s in plan.subscriptions} | {
        i.customer for i in plan.invoices}}  # fmt: skip
    for customer in customers.values():
        await _card_on_file(platform, tenant, customer, now)
    if plan.first_number is not None:
        async with tenant_transaction(merchant.iso_id):
            await fetch(
                "INSERT INTO portal_billing_invoice_counter (merchant_id, series, iso_id, next_number) "
                "VALUES ($1, 'invoice', $2, $3) "
                "ON CONFLICT (merchant_id, series) DO UPDATE SET next_number = EXCLUDED.next_number",
                merchant.id, merchant.iso_id, plan.first_number,
            )  # fmt: skip

    def at_nine(day: date) -> datetime:
        return datetime.combine(day, time(9, 0), tzinfo=zone).astimezone(UTC)

    # What happens when, oldest first: subscriptions start, one-off invoices are issued.
    timeline: list[tuple[datetime, DemoSubscription | DemoInvoice]] = []
    for sub in plan.subscriptions:
        timeline.append((at_nine(months_before(local_today, sub.months) - timedelta(days=sub.days)), sub))
    for one_off in plan.invoices:
        timeline.append((at_nine(local_today - timedelta(days=one_off.days_ago)), one_off))
    timeline.sort(key=lambda item: item[0])
    prices: dict[str, str] = {}
    started: list[str] = []
    for at, item in timeline:
        await _renew_until(platform, tenant, started, at)
        customer = customers[item.customer]
        if isinstance(item, DemoSubscription):
            started.append(await _subscribe(platform, tenant, plan, item, customer, prices, at))
        else:
            await _one_off(platform, tenant, plan, item, customer, at)
    await _renew_until(platform, tenant, started, now)


async def _renew_until(platform: Platform, tenant: Tenant, started: list[str], until: datetime) -> None:
    """Renew the started subscriptions period by period up to ``until``, paying each invoice when it is made."""
    while True:
        due: list[tuple[datetime, str]] = []
        async with tenant_transaction(tenant.merchant.iso_id):
            for sub_id in started:
                sub = await subscriptions.get(tenant, sub_id)
                if sub.status in ("active", "trialing") and sub.current_period_end <= until:
                    due.append((sub.current_period_end, sub_id))
        if not due:
            return
        at, sub_id = min(due)
        async with tenant_transaction(tenant.merchant.iso_id):
            _, invoice = await subscriptions.renew(tenant, sub_id, now=at, actor=SYSTEM)
        if invoice is not None and invoice.status == "open":
            await charges.pay_invoice(platform, tenant, invoice.id, now=at, actor=SYSTEM)


async def _subscribe(
    platform: Platform,
    tenant: Tenant,
    plan: DemoMerchant,
    item: DemoSubscription,
    customer: CustomerView,
    prices: dict[str, str],
    at: datetime,
) -> str:
    async with tenant_transaction(tenant.merchant.iso_id):
        if item.product not in prices:
            product = await catalog.create_product(tenant, name=item.product, actor=SYSTEM)
            price = await catalog.create_price(
                tenant, product_id=product.id, currency=plan.currency, unit_amount=item.unit_amount,
                interval=item.interval, nickname=item.nickname, actor=SYSTEM,
            )  # fmt: skip
            prices[item.product] = price.id
        sub = await subscriptions.create(
            tenant, customer_id=customer.id, price_id=prices[item.product], now=at, actor=SYSTEM
        )
        rows = await fetch(
            "SELECT id FROM portal_billing_invoice WHERE merchant_id = $1 AND subscription_id = $2 AND status = 'open'",
            tenant.merchant.id,
            sub.id,
        )
    for row in rows:
        await charges.pay_invoice(platform, tenant, row["id"], now=at, actor=SYSTEM)
    return sub.id


async def _one_off(
    platform: Platform, tenant: Tenant, plan: DemoMerchant, item: DemoInvoice, customer: CustomerView, at: datetime
) -> None:
    line = LineInput(description=item.description, quantity=item.quantity, unit_amount=item.unit_amount)
    async with tenant_transaction(tenant.merchant.iso_id):
        draft = await invoices.create(
            tenant, customer_id=customer.id, currency=plan.currency, lines=[line], hosted=True,
            due_at=at + timedelta(days=item.due_in_days), now=at, actor=SYSTEM,
        )  # fmt: skip
        invoice = await invoices.finalize(tenant, draft.id, now=at, actor=SYSTEM)
    if item.paid:
        await charges.pay_invoice(platform, tenant, invoice.id, now=at, actor=SYSTEM)
