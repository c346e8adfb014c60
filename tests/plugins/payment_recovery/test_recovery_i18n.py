"""Payment recovery in the customer's language: the emails, the link they carry and the pages it opens.

A customer who read the portal in Spanish (a link with a ``locale`` claim set
``portal_customer.locale``) gets the dunning email in Spanish, with Spanish money and dates in
the merchant's time zone; its link opens the card update page in Spanish, and the receipt
follows in Spanish. A customer with no language of their own at a merchant whose default is
``de_DE`` gets everything in German.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest_asyncio

from portal.access.links import issue_link
from portal.db.engine import fetch, tenant_transaction
from portal.mail import MailCatcher
from portal.platform import Platform
from portal.tenancy.models import CustomerView
from portal.testing import BASE_DOMAIN, ClientFactory, apply_tenants
from support.billing import Ledger
from support.recovery import GOOD_CARD, SOFT_DECLINE, Shop, land, link_in, tenant_file, text_of, tokenize

SPANISH_MONTHS = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
]
GERMAN_MONTHS = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
]


def spaced(text: str) -> str:
    """``text`` with the no-break spaces Babel writes (U+00A0 in ``39,00 US$``, U+202F) as plain ones."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def merchant_day(at: datetime) -> tuple[int, int]:
    """``(day, month)`` of ``at`` in the test merchants' time zone (America/New_York)."""
    local = at.astimezone(ZoneInfo("America/New_York"))
    return local.day, local.month


def spanish_date(at: datetime) -> str:
    day, month = merchant_day(at)
    return f"{day} de {SPANISH_MONTHS[month - 1]}"


def german_date(at: datetime) -> str:
    day, month = merchant_day(at)
    return f"{day}. {GERMAN_MONTHS[month - 1]}"


@pytest_asyncio.fixture(loop_scope="session")
async def german_shop(
    portal_platform: Platform, portal_mail: MailCatcher, portal_client: ClientFactory, tmp_path: Path
) -> AsyncIterator[Shop]:
    """A fresh merchant like the other tests' ``shop``, whose default language is German (``de-DE``)."""
    slug = f"rec-{uuid.uuid4().hex[:8]}"
    text = tenant_file(slug).replace('locale = "en-US"', 'locale = "de-DE"')
    assert 'locale = "de-DE"' in text
    await apply_tenants(portal_platform, text, tmp_path)
    tenant = await portal_platform.tenants.resolve(f"{slug}.{BASE_DOMAIN}")
    assert tenant is not None and tenant.merchant.locale == "de-DE"
    host = f"{slug}.{BASE_DOMAIN}"
    shop = Shop(portal_platform, Ledger(portal_platform, tenant, portal_client(host)), portal_mail, portal_client)
    yield shop
    await shop.work()  # as the shared fixture does: nothing of this shop's left for another test's worker


async def customer_locale(shop: Shop, customer: CustomerView) -> str | None:
    row = await shop.row("SELECT locale FROM portal_customer WHERE id = $1", customer.id)
    return row["locale"]


async def read_in_spanish(shop: Shop, customer: CustomerView) -> None:
    """The customer opens a portal link whose ``locale`` claim is Spanish: their language becomes ``es``."""
    async with tenant_transaction(shop.tenant.merchant.iso_id):
        link = await issue_link(shop.platform.settings, shop.tenant, customer.id, purpose="portal", locale="es")
    _, landing = await land(shop, link.token)
    assert landing.status_code == 303
    assert await customer_locale(shop, customer) == "es"


async def fail_renewal(shop: Shop, customer: CustomerView) -> str:
    """``customer``'s Monthly Bread Box ($39.00) trial ends on a card that declines; the renewal invoice's id."""
    await shop.ledger.card(customer, SOFT_DECLINE)
    price = await shop.ledger.price(3900, name="Monthly Bread Box")
    now = await shop.now()
    subscription = await shop.ledger.subscribe(price, now=now, customer=customer, trial_end=now + timedelta(days=1))
    await shop.advance(timedelta(days=1, hours=1))
    async with shop.ledger.tx():
        rows = await fetch(
            "SELECT id FROM portal_billing_invoice WHERE merchant_id = $1 AND subscription_id = $2 AND status = 'open'",
            shop.tenant.merchant.id,
            subscription.id,
        )
    assert len(rows) == 1, rows
    return str(rows[0]["id"])


async def link_locale(shop: Shop, customer: CustomerView) -> str | None:
    row = await shop.row(
        "SELECT locale FROM portal_link WHERE merchant_id = $1 AND customer_id = $2 AND purpose = 'update_payment'",
        shop.tenant.merchant.id,
        customer.id,
    )
    return row["locale"]


async def test_a_spanish_customer_is_emailed_in_spanish_and_the_link_opens_spanish_pages(shop: Shop, csrf_of) -> None:
    customer = await shop.ledger.customer()
    await read_in_spanish(shop, customer)
    invoice_id = await fail_renewal(shop, customer)
    case = await shop.case(invoice_id)
    failed_on = spanish_date(case["failed_at"])

    dunning = await shop.mail_to(customer.email, "Su pago reciente no se pudo completar")
    text, html = spaced(text_of(dunning)), spaced(text_of(dunning, "html"))
    charge = f"No pudimos procesar su cargo del {failed_on} de 39,00 US$ por Monthly Bread Box."
    assert charge in text and charge in html
    assert "Hola, Jane:" in text and "mantendrá su plan actual" in text
    assert "El enlace funciona durante 7 días" in text
    assert "Actualizar método de pago" in html and '<html lang="es"' in html
    for english in ("didn't go through", "We couldn't", "$39.00", "Update Payment Method"):
        assert english not in text and english not in html
    assert await link_locale(shop, customer) == "es"

    _, token = link_in(dunning)
    client, landing = await land(shop, token)
    assert (landing.status_code, landing.headers["location"]) == (303, "/payment-methods/update")
    page = await client.get("/payment-methods/update")
    assert page.status_code == 200 and '<html lang="es"' in page.text
    assert f"39,00 US$ por Monthly Bread Box el {failed_on}" in spaced(page.text)

    saved = await client.post(
        "/payment-methods/update",
        data={"csrf_token": csrf_of(page.text), "payment_token": await tokenize(shop, GOOD_CARD)},
    )
    assert (saved.status_code, saved.headers["location"]) == (303, "/payment-recovery/done")
    done = spaced((await client.get("/payment-recovery/done")).text)
    assert "<title>Pago recibido" in done and "¡Gracias!" in done
    number = (await shop.row("SELECT number FROM portal_billing_invoice WHERE id = $1", invoice_id))["number"]
    assert f"39,00 US$ por Monthly Bread Box ({number}): pagado" in done
    assert "Sigue en su plan actual, como antes." in done

    await shop.work()  # the receipt
    resolved = spanish_date((await shop.case(invoice_id))["resolved_at"])
    receipt = await shop.mail_to(customer.email, "Pago recibido: 39,00 US$ por Monthly Bread Box")
    assert (
        f"Gracias: su pago de 39,00 US$ por Monthly Bread Box se completó el {resolved}, con cargo a Visa •••• 1111."
        in spaced(text_of(receipt))
    )


async def test_a_customer_without_a_language_is_emailed_in_the_merchants_german(german_shop: Shop, csrf_of) -> None:
    shop = german_shop
    customer = await shop.ledger.customer()
    assert await customer_locale(shop, customer) is None
    invoice_id = await fail_renewal(shop, customer)
    failed_on = german_date((await shop.case(invoice_id))["failed_at"])

    dunning = await shop.mail_to(customer.email, "Ihre letzte Zahlung ist nicht durchgegangen")
    text, html = spaced(text_of(dunning)), spaced(text_of(dunning, "html"))
    charge = f"Wir konnten Ihre Abbuchung vom {failed_on} über 39,00 $ für Monthly Bread Box nicht durchführen."
    assert charge in text and charge in html
    assert "Guten Tag Jane," in text and "Sie bleiben in Ihrem aktuellen Tarif" in text
    assert "Der Link ist 7 Tage lang gültig" in text and "Zahlungsmethode aktualisieren" in html
    assert "$39.00" not in text and "didn't go through" not in text
    assert await link_locale(shop, customer) is None  # the customer chose no language: the link names none
    assert await customer_locale(shop, customer) is None

    _, token = link_in(dunning)
    client, landing = await land(shop, token)
    assert landing.status_code == 303
    page = await client.get("/payment-methods/update")
    assert page.status_code == 200 and '<html lang="de-DE"' in page.text
    assert f"39,00 $ für Monthly Bread Box am {failed_on}" in spaced(page.text)
    saved = await client.post(
        "/payment-methods/update",
        data={"csrf_token": csrf_of(page.text), "payment_token": await tokenize(shop, SOFT_DECLINE)},
    )
    assert saved.headers["location"] == "/payment-recovery/declined?reason=declined"
    declined = spaced((await client.get(saved.headers["location"])).text)
    assert "Nicht bezahlt:" in declined and "Ihre Bank hat die neue Karte abgelehnt." in declined
    assert f"Noch offen: 39,00 $ für Monthly Bread Box am {failed_on}." in declined
    assert "Andere Karte versuchen" in declined and "Your bank declined" not in declined
