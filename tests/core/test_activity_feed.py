"""The Overview's *Recent activity*: the signed-in customer's own events, in words, and no one else's.

Events are made through the ledger and the card vault (production code) for two customers at
one merchant and for Jane at two merchants of one ISO and at a merchant of another ISO; each
Overview is fetched as its customer and read.
"""

from __future__ import annotations

import re
import types
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

import portal_cards.service as cards_service
from portal.activity.formats import ActivityFormat
from portal.billing import charges, invoices
from portal.billing.models import LineInput
from portal.customers.billing import BillingDetails, update_billing_details
from portal.events.bus import Actor, emit
from portal.payments.sandbox import SandboxAdapter
from portal.platform import Platform
from portal.plugin import ActivityDescription, ActivityEvent, hookimpl
from portal.plugins.manager import PluginLoadError, create_plugin_manager
from portal.plugins.registry import PluginRegistry
from portal.tenancy.models import CustomerView
from portal.testing import BASE_DOMAIN, ClientFactory, apply_tenants, customer_id
from support.billing import FUTURE, GOOD_CARD, Ledger

RUN = uuid.uuid4().hex[:6]
SHOP, SISTER, STRANGER = (f"act-{name}-{RUN}" for name in ("shop", "sister", "stranger"))
ACTOR = Actor(type="merchant_api_key", id="key_activity_tests")
JANE, SAM = "jane@globalco.com", "sam@globalco.com"

TENANTS = f"""
[[isos]]
slug = "act-iso-{RUN}"
name = "Activity ISO"

[[isos.merchants]]
slug = "{SHOP}"
name = "Activity shop"
timezone = "America/New_York"
[isos.merchants.gateway]
key = "sandbox"
[isos.merchants.plugins.cards]
[isos.merchants.plugins.example]
[[isos.merchants.customers]]
email = "{JANE}"
name = "Jane Cooper"
[[isos.merchants.customers]]
email = "{SAM}"
name = "Sam Carter"

[[isos.merchants]]
slug = "{SISTER}"
name = "Sister shop"
[isos.merchants.gateway]
key = "sandbox"
[[isos.merchants.customers]]
email = "{JANE}"
name = "Jane Cooper"

[[isos]]
slug = "act-other-{RUN}"
name = "Other ISO"

[[isos.merchants]]
slug = "{STRANGER}"
name = "Stranger shop"
[isos.merchants.gateway]
key = "sandbox"
[[isos.merchants.customers]]
email = "{JANE}"
name = "Jane Cooper"
"""
LINE = re.compile(
    r'<li class="activity__item"[^>]*>\s*<span class="activity__text">([^<]*)</span>\s*'
    r'<span class="activity__meta">(.*?)</span>\s*</li>',
    re.DOTALL,
)


def host(slug: str) -> str:
    return f"{slug}.{BASE_DOMAIN}"


def feed(html: str) -> list[tuple[str, str]]:
    """The feed's lines as (text, meta) with tags stripped."""
    return [(text.strip(), re.sub(r"<[^>]+>", "", meta).strip()) for text, meta in LINE.findall(html)]


async def ledger(platform: Platform, portal_client: ClientFactory, slug: str) -> Ledger:
    tenant = await platform.tenants.resolve(host(slug))
    assert tenant is not None
    return Ledger(platform, tenant, portal_client(host(slug)))


async def one_off(book: Ledger, customer: str, amount: int, *, days_ago: int, paid: bool) -> str:
    """A finalized invoice of ``amount`` issued ``days_ago`` days ago, paid then if ``paid``; its number."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    line = LineInput(description="Catering", quantity=1, unit_amount=amount)
    async with book.tx():
        draft = await invoices.create(
            book.tenant, customer_id=customer, currency="USD", lines=[line], due_at=at + timedelta(days=21),
            now=at, actor=ACTOR,
        )  # fmt: skip
        invoice = await invoices.finalize(book.tenant, draft.id, now=at, actor=ACTOR)
    if paid:
        await charges.pay_invoice(book.platform, book.tenant, invoice.id, now=at, actor=ACTOR)
    assert invoice.number is not None
    return invoice.number


async def view(book: Ledger, cid: str) -> CustomerView:
    return CustomerView(id=cid, merchant_id=book.tenant.merchant.id, email=JANE, name="Jane Cooper")


async def add_card(book: Ledger, customer: CustomerView) -> str:
    """A sandbox Visa put on file through the cards plugin (which emits ``payment_method.added``); its last4."""
    adapter = book.platform.gateways.for_tenant(book.tenant)
    assert isinstance(adapter, SandboxAdapter)
    body = {"tokenization_key": adapter.tokenization_key, "ccnumber": GOOD_CARD, "ccexp": FUTURE, "cvv": "123"}
    token = await book.client.post("/sandbox-gateway/tokenize", json=body)
    assert token.status_code == 200, token.text
    added = await cards_service.add_card(
        book.platform, book.tenant, customer, token.json()["token"], make_default=True, actor=ACTOR
    )
    return added.card.last4


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(portal_platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    await apply_tenants(portal_platform, TENANTS, tmp_path_factory.mktemp("activity"))
    return portal_platform


async def test_the_feed_shows_only_the_customers_own_events_in_words(
    platform: Platform, portal_client: ClientFactory, portal_sign_in
) -> None:
    shop = await ledger(platform, portal_client, SHOP)
    jane, sam = await customer_id(SHOP, JANE), await customer_id(SHOP, SAM)
    last4 = await add_card(shop, await view(shop, jane))
    started = datetime.now(UTC) - timedelta(days=40)
    await shop.subscribe(await shop.price(3900, name=f"Bread Box {RUN}"), now=started, customer=await view(shop, jane))
    paid_number = await one_off(shop, jane, 124000, days_ago=4, paid=True)
    issued_number = await one_off(shop, jane, 342000, days_ago=2, paid=False)
    details = BillingDetails(line1="1 Main St", city="New York", postal_code="10001", country="US")
    async with shop.tx():
        await update_billing_details(shop.tenant, jane, details, actor=ACTOR, registry=platform.registry)
    # Sam at the same shop, Jane at the sister shop and at another ISO's merchant: none of it may show.
    await one_off(shop, sam, 77700, days_ago=1, paid=False)
    secret = await shop.price(1100, name=f"Sam Secret Plan {RUN}")
    await shop.subscribe(secret, now=started, customer=await view(shop, sam))
    sister = await ledger(platform, portal_client, SISTER)
    await one_off(sister, await customer_id(SISTER, JANE), 55500, days_ago=1, paid=False)
    stranger = await ledger(platform, portal_client, STRANGER)
    await one_off(stranger, await customer_id(STRANGER, JANE), 44400, days_ago=1, paid=False)

    client = portal_client(host(SHOP))
    await portal_sign_in(client, JANE)
    page = await client.get("/")
    assert page.status_code == 200, page.text
    zone, now = ZoneInfo("America/New_York"), datetime.now(UTC)

    def day(days_ago: int) -> str:
        local = (now - timedelta(days=days_ago)).astimezone(zone)
        return f"{local:%b} {local.day}"

    assert feed(page.text) == [
        ("Billing details updated", day(0)),
        (f"Invoice {issued_number} issued", f"$3,420 · Due {day(2 - 21)}"),
        (f"Invoice {paid_number} paid", f"$1,240 · {day(4)}"),
        (f"Invoice {paid_number} issued", f"$1,240 · Due {day(4 - 21)}"),
        (f"Subscription Bread Box {RUN} started", f"$39 · {day(40)}"),
        (f"Visa ending {last4} added", day(0)),
    ]
    for other in ("Sam Secret", "$777", "$555", "$444"):
        assert other not in page.text
    assert '<h2 class="activity__title" id="activity-title">Recent activity</h2>' in page.text

    sams_client = portal_client(host(SHOP))
    await portal_sign_in(sams_client, SAM)
    sams = feed((await sams_client.get("/")).text)
    assert [text for text, _ in sams] == [f"Subscription Sam Secret Plan {RUN} started", sams[1][0]]
    assert sams[1][1].startswith("$777 · Due")
    sister_client = portal_client(host(SISTER))
    await portal_sign_in(sister_client, JANE)
    at_sister = feed((await sister_client.get("/")).text)
    assert [meta.split(" · ")[0] for _, meta in at_sister] == ["$555"], "only her invoice at the sister shop"


async def test_a_customer_without_events_sees_no_feed(
    platform: Platform, portal_client: ClientFactory, portal_sign_in
) -> None:
    shop = await ledger(platform, portal_client, SHOP)
    newcomer = await shop.customer()
    client = portal_client(host(SHOP))
    await portal_sign_in(client, newcomer.email)
    page = await client.get("/")
    assert page.status_code == 200
    assert feed(page.text) == [] and "Recent activity" not in page.text
    assert 'class="widget card"' in page.text, "the cards widget still shows"


async def test_a_plugins_events_are_described_only_where_it_is_on(
    platform: Platform, portal_client: ClientFactory, portal_sign_in
) -> None:
    for slug in (SHOP, SISTER):  # the example plugin is on at the shop, off at the sister shop
        book = await ledger(platform, portal_client, slug)
        reader = await book.customer()
        async with book.tx():
            await emit(
                book.tenant.merchant, "example.note_written", {"note_id": f"n-{slug}", "customer_id": reader.id},
                actor=ACTOR, customer_id=reader.id, registry=platform.registry,
            )  # fmt: skip
        client = portal_client(host(slug))
        await portal_sign_in(client, reader.email)
        lines = feed((await client.get("/")).text)
        assert lines == ([(f"Note n-{slug} written", day_of(datetime.now(UTC), book))] if slug == SHOP else [])


def day_of(at: datetime, book: Ledger) -> str:
    local = at.astimezone(ZoneInfo(book.tenant.merchant.timezone))
    return f"{local:%b} {local.day}"


def test_describing_an_unknown_or_already_described_event_type_stops_start_up() -> None:
    import support.example_plugin

    def nothing(event: ActivityEvent, fmt: ActivityFormat) -> None:
        return None

    for event_type, problem in (("example.nope", "unknown event type"), ("invoice.paid", "described by both")):
        rival = types.ModuleType("rival")
        rival.portal_activity_descriptions = hookimpl(  # type: ignore[attr-defined]
            lambda event_type=event_type: [ActivityDescription(event_type=event_type, describe=nothing)]
        )
        manager = create_plugin_manager(
            load_plugins=(), extra_plugins=[("example", support.example_plugin), ("rival", rival)]
        )
        with pytest.raises(PluginLoadError, match=problem):
            PluginRegistry(manager)


def test_core_describes_the_ledgers_events_and_plugins_theirs(platform: Platform) -> None:
    registry = platform.registry
    core = registry.activity_descriptions(frozenset())
    assert {"invoice.paid", "invoice.finalized", "subscription.renewed", "invoice.payment_failed"} <= set(core)
    assert "payment_method.added" not in core and "example.note_written" not in core
    with_cards = registry.activity_descriptions(frozenset({"cards"}))
    assert {"payment_method.added", "payment_method.removed", "payment_method.default_changed"} <= set(with_cards)
