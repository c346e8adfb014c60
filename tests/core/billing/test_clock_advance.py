"""Test clocks and the demo's billing data: ``advance_clock``, ``portal clock advance`` and ``apply_demo_billing``.

The demo tenants (``tenants/demo.toml``) are applied to the test database with their billing
data, as ``portal demo`` does; Jane Cooper at Greenfield then has what the product page shows.
Advancing Greenfield's clock by 31 days renews both of her subscriptions, charges her sandbox
card and queues the webhooks of every event for the merchant's endpoint.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from portal.activity.feed import ActivityItem, recent_activity
from portal.activity.formats import formats_for
from portal.billing import advance, clock, invoices, subscriptions
from portal.billing.advance import advance_clock, parse_duration
from portal.billing.demo_data import apply_demo_billing
from portal.billing.errors import BillingError
from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.platform import Platform
from portal.tenancy.files import apply_tenant_file, load_tenant_file
from portal.tenancy.models import Tenant
from portal.testing import apply_tenants
from support.cli import cli_environment, portal

ROOT = Path(__file__).parents[3]
JANE = "jane@globalco.com"


async def tenant_of(platform: Platform, slug: str) -> Tenant:
    async with system_transaction():
        found = await fetch("SELECT * FROM portal_locate_merchant($1)", slug)
    tenant = await platform.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
    assert tenant is not None
    return tenant


async def counts(tenant: Tenant) -> dict[str, int]:
    merchant = tenant.merchant
    tables = ("product", "price", "subscription", "invoice", "payment_attempt")
    async with tenant_transaction(merchant.iso_id):
        found = {}
        for table in tables:
            rows = await fetch(f"SELECT count(*) AS n FROM portal_billing_{table} WHERE merchant_id = $1", merchant.id)
            found[table] = int(rows[0]["n"])
        sales = await fetch("SELECT count(*) AS n FROM portal_sandbox_transaction WHERE merchant_id = $1", merchant.id)
        found["sandbox sales"] = int(sales[0]["n"])
    return found


async def jane(tenant: Tenant) -> str:
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            "SELECT id FROM portal_customer WHERE merchant_id = $1 AND email_normalized = $2", tenant.merchant.id, JANE
        )
    return str(rows[0]["id"])


@dataclass
class Page:
    """Jane's billing at Greenfield right after the demo data was applied (before any clock moved)."""

    today: datetime
    subs: list[Any]
    bills: list[Any]
    products: list[dict[str, Any]]
    cards: list[dict[str, Any]]
    feed: list[ActivityItem]


async def janes_page(platform: Platform) -> Page:
    tenant = await tenant_of(platform, "greenfield")
    customer = await jane(tenant)
    today = datetime.now(UTC)
    async with tenant_transaction(tenant.merchant.iso_id):
        subs = await subscriptions.list(tenant, customer=customer, limit=100, starting_after=None)
        bills = await invoices.list(tenant, customer=customer, limit=100, starting_after=None)
        products = await fetch(
            "SELECT p.name, pr.unit_amount, s.status FROM portal_billing_subscription s "
            "JOIN portal_billing_price pr ON pr.id = s.price_id JOIN portal_billing_product p ON p.id = pr.product_id "
            "WHERE s.customer_id = $1",
            customer,
        )
        cards = await fetch(
            "SELECT DISTINCT m.gateway, m.last4 FROM portal_billing_payment_attempt a "
            "JOIN portal_payment_method m ON m.id = a.payment_method_id "
            "JOIN portal_billing_invoice i ON i.id = a.invoice_id WHERE i.customer_id = $1",
            customer,
        )
        described = platform.registry.activity_descriptions(tenant.enabled_plugins)
        fmt = formats_for(tenant.merchant.timezone, tenant.merchant.locale)
        feed = await recent_activity(tenant, customer, described, fmt)
    return Page(today=today, subs=subs, bills=bills, products=products, cards=cards, feed=feed)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def demo(portal_platform: Platform) -> tuple[Platform, Page]:
    """The demo tenants and their billing data in the test database (applied twice: the second changes nothing)."""
    spec = load_tenant_file(
        ROOT / "tenants" / "demo.toml", portal_platform.registry, portal_platform.settings.base_domain
    )
    await apply_tenant_file(spec, portal_platform.registry)
    portal_platform.tenants.invalidate()
    first = await apply_demo_billing(portal_platform)
    assert first == ["greenfield", "pinnacle", "apex", "northwind"]
    before = {slug: await counts(await tenant_of(portal_platform, slug)) for slug in first}
    assert await apply_demo_billing(portal_platform) == []
    assert {slug: await counts(await tenant_of(portal_platform, slug)) for slug in first} == before
    return portal_platform, await janes_page(portal_platform)


async def test_jane_at_greenfield_has_what_the_product_page_shows(demo: tuple[Platform, Page]) -> None:
    page = demo[1]
    today, subs, bills = page.today, page.subs, page.bills
    assert len(subs) == 2 and {sub.status for sub in subs} == {"active"}
    assert {"name": "Monthly Bread Box", "unit_amount": 3900, "status": "active"} in page.products
    assert all(today < sub.current_period_end <= today + timedelta(days=31) for sub in subs)
    assert len(bills) == 12
    assert sorted(bill.number or "" for bill in bills) == [f"INV-{n}" for n in range(1106, 1118)]
    open_bills = [bill for bill in bills if bill.status == "open"]
    assert [(bill.number, bill.total, bill.currency) for bill in open_bills] == [("INV-1117", 342000, "USD")]
    due = open_bills[0].due_at
    assert due is not None and timedelta(days=14) < due - today < timedelta(days=28), "due in a few weeks"
    paid = [bill for bill in bills if bill.status == "paid"]
    assert len(paid) == 11
    assert sum(bill.amount_paid for bill in paid if bill.paid_at and bill.paid_at.year == today.year) == 1864000
    assert all(bill.paid_at is not None and bill.paid_at <= today for bill in paid)
    assert page.cards == [{"gateway": "sandbox", "last4": "1111"}], "every payment on her sandbox card"


async def test_janes_recent_activity_reads_as_the_product_page(demo: tuple[Platform, Page]) -> None:
    page = demo[1]
    tenant = await tenant_of(demo[0], "greenfield")
    zone = ZoneInfo(tenant.merchant.timezone)
    due = {bill.number: bill for bill in page.bills}["INV-1117"].due_at
    assert due is not None

    def day(at: datetime) -> str:
        local = at.astimezone(zone)
        return f"{local:%b} {local.day}"

    renewed, paid = page.today - timedelta(days=3), page.today - timedelta(days=4)
    assert [(item.text, item.amount, item.when) for item in page.feed[:3]] == [
        ("Invoice INV-1117 issued", "$3,420", f"Due {day(due)}"),
        ("Subscription Monthly Bread Box renewed", "$39", day(renewed)),
        ("Invoice INV-1115 paid", "$1,240", day(paid)),
    ]
    assert 3 <= len(page.feed) <= 6
    assert all("Pinnacle" not in item.text and "Outfitters" not in item.text for item in page.feed)


async def test_other_demo_merchants_have_smaller_data(demo: tuple[Platform, Page]) -> None:
    platform = demo[0]
    sizes = {slug: await counts(await tenant_of(platform, slug)) for slug in ("pinnacle", "apex", "northwind")}
    for slug, found in sizes.items():
        assert 0 < found["invoice"] < 12, slug
        assert found["sandbox sales"] == found["payment_attempt"], slug
    northwind = await tenant_of(platform, "northwind")
    async with tenant_transaction(northwind.merchant.iso_id):
        currencies = await fetch(
            "SELECT DISTINCT currency FROM portal_billing_invoice WHERE merchant_id = $1", northwind.merchant.id
        )
    assert currencies == [{"currency": "GBP"}]


async def test_31_days_renew_janes_subscriptions_and_queue_webhooks(demo: tuple[Platform, Page]) -> None:
    platform = demo[0]
    tenant = await tenant_of(platform, "greenfield")
    merchant = tenant.merchant
    customer = await jane(tenant)
    endpoint = f"we_{uuid.uuid4().hex[:20]}"
    async with tenant_transaction(merchant.iso_id):
        await fetch(
            "INSERT INTO portal_webhook_endpoint (id, iso_id, merchant_id, url, secret) VALUES ($1, $2, $3, $4, $5)",
            endpoint, merchant.iso_id, merchant.id, "https://hooks.greenfield.localhost/portal", "whsec_" + "A" * 32,
        )  # fmt: skip
        before = await subscriptions.list(tenant, customer=customer, limit=100, starting_after=None)
    start = await clock.merchant_now(merchant.id, iso_id=merchant.iso_id)
    try:
        report = await advance_clock(platform, tenant, start + timedelta(days=31))
    finally:
        async with tenant_transaction(merchant.iso_id):
            await fetch("UPDATE portal_webhook_endpoint SET enabled = false WHERE id = $1", endpoint)
    assert report.now == start + timedelta(days=31)
    assert sorted(report.renewed) == sorted(sub.id for sub in before), "each of Jane's subscriptions renewed once"
    assert len(report.invoices) == 2 and sorted(report.payments_succeeded) == sorted(report.invoices)
    assert report.payments_failed == [] and report.steps == 4, "starts, stops at each renewal, then at the target"
    assert [event.at for event in report.events] == sorted(event.at for event in report.events), "in order"
    async with tenant_transaction(merchant.iso_id):
        after = {
            sub.id: sub for sub in await subscriptions.list(tenant, customer=customer, limit=100, starting_after=None)
        }
        deliveries = await fetch(
            "SELECT event_type FROM portal_webhook_delivery WHERE endpoint_id = $1 AND status = 'pending'", endpoint
        )
    for sub in before:
        assert after[sub.id].current_period_start == sub.current_period_end
        assert after[sub.id].current_period_end > report.now
    kinds = [row["event_type"] for row in deliveries]
    assert report.webhooks_queued == len(kinds) > 0
    assert kinds.count("subscription.renewed") == 2 and kinds.count("invoice.paid") == 2
    assert kinds.count("payment.succeeded") == 2
    assert await clock.merchant_now(merchant.id, iso_id=merchant.iso_id) == report.now
    # Nothing fell due twice: advancing by nothing runs nothing.
    again = await advance_clock(platform, tenant, report.now)
    assert (again.renewed, again.tasks_run, again.steps) == ([], 0, 1)


async def test_clocks_only_move_forward_and_only_on_the_sandbox(
    demo: tuple[Platform, Page], tmp_path_factory: pytest.TempPathFactory
) -> None:
    platform = demo[0]
    tenant = await tenant_of(platform, "apex")
    now = await clock.merchant_now(tenant.merchant.id, iso_id=tenant.merchant.iso_id)
    with pytest.raises(BillingError) as backwards:
        await advance_clock(platform, tenant, now - timedelta(days=1))
    assert backwards.value.code == "clock_backwards"
    slug = f"clock-live-{uuid.uuid4().hex[:6]}"
    tenants = f'[[isos]]\nslug = "{slug}"\nname = "Live"\n\n[[isos.merchants]]\nslug = "{slug}"\nname = "Live"\n'
    await apply_tenants(platform, tenants, tmp_path_factory.mktemp("clock"))
    live = await tenant_of(platform, slug)
    with pytest.raises(BillingError) as refused:
        await advance_clock(platform, live, now + timedelta(days=1))
    assert refused.value.code == "clock_not_allowed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("31d", timedelta(days=31)), ("2w", timedelta(weeks=2)), ("1d12h", timedelta(days=1, hours=12)),
     ("90m", timedelta(minutes=90)), (" 45s ", timedelta(seconds=45))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "31", "d", "31x", "1.5d", "-1d", "31d and more"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        advance.parse_duration(text)


def test_the_command_advances_a_sandbox_merchant(demo: tuple[Platform, Page], tmp_path: Path) -> None:
    env = cli_environment(str(demo[0].settings.database_url), tmp_path / "site")
    result = portal(env, "clock", "advance", "--merchant", "pinnacle", "35d")
    assert result.returncode == 0, result.stderr
    lines: list[Any] = result.stdout.splitlines()
    assert lines[0].startswith("pinnacle: clock ") and "renewed 1," in lines[1], result.stdout
    assert "subscription.renewed" in result.stdout and "payment.succeeded" in result.stdout
    refused = portal(env, "clock", "advance", "--merchant", "pinnacle", "soon")
    assert refused.returncode == 2 and "not a duration" in refused.stderr
    unknown = portal(env, "clock", "advance", "--merchant", "nowhere-to-be-found", "1d")
    assert unknown.returncode == 1 and "no merchant" in unknown.stderr
