"""The card pages in Spanish and the other languages, and the brand marks with their accessible names."""

from __future__ import annotations

import re

import pytest
from plugins.cards.conftest import DECLINES, GREENFIELD, MASTERCARD, VISA, Shopper, tenant_at

from portal.db.engine import fetch, tenant_transaction
from portal.platform import Platform

MARK = re.compile(r'<img class="card-brand" src="/static/plugins/cards/brands/([a-z]+\.svg)" alt="([^"]*)"')


def _marks(html: str) -> list[tuple[str, str]]:
    """Each brand mark on the page: (file, alt text)."""
    return MARK.findall(html)


def _main(html: str) -> str:
    return html.split('<main id="main"', 1)[1].split("</main>", 1)[0]


async def _spanish(shopper) -> Shopper:
    jane: Shopper = await shopper()
    jane.client.headers["Accept-Language"] = "es"
    return jane


async def _set_brand(platform: Platform, card_id: str, brand: str) -> None:
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch("UPDATE portal_payment_method SET brand = $2 WHERE id = $1", card_id, brand)


def _card_of(response) -> str:
    assert response.status_code == 303, response.text
    found = re.search(r"card=(pm_[0-9a-z]+)", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


async def test_the_card_list_in_spanish_with_brand_marks(platform, shopper) -> None:
    jane = await _spanish(shopper)
    empty = await jane.client.get("/payment-methods")
    assert empty.status_code == 200 and '<html lang="es"' in empty.text
    assert "No tiene ninguna tarjeta registrada." in empty.text and ">Añadir una tarjeta</a>" in empty.text

    response = await jane.add(VISA)
    page = await jane.client.get(response.headers["location"])
    text = page.text
    assert '<h1 class="page-title">Métodos de pago</h1>' in text
    assert "<title>Métodos de pago · Greenfield Bakery</title>" in text
    assert "Hecho:</strong> Visa terminada en 1111 se ha añadido." in text
    assert "Predeterminada</span>" in text and "Caduca: 12/2030" in text
    assert 'aria-current="page">Métodos de pago</a>' in text  # the navigation label
    assert 'aria-label="Tarjetas registradas"' in text
    assert "Payment methods" not in text and "ending in" not in text and "Default</span>" not in text
    assert _marks(text) == [("visa.svg", "Visa")]

    second = _card_of(await jane.add(MASTERCARD))
    listing = await jane.client.get(f"/payment-methods?done=added&card={second}")
    assert "Mastercard terminada en 4444 se ha añadido." in listing.text
    assert sorted(_marks(listing.text)) == [("mastercard.svg", "Mastercard"), ("visa.svg", "Visa")]
    assert 'Hacer predeterminada<span class="visually-hidden">: Mastercard terminada en 4444</span>' in listing.text
    assert 'Eliminar<span class="visually-hidden">: Visa terminada en 1111</span>' in listing.text


@pytest.mark.parametrize(
    ("brand", "mark", "name", "description"),
    [
        ("amex", "amex.svg", "American Express", "American Express terminada en 1111"),
        ("discover", "discover.svg", "Discover", "Discover terminada en 1111"),
        ("jcb", "card.svg", "JCB", "JCB terminada en 1111"),
        ("mystery", "card.svg", "Tarjeta", "Tarjeta terminada en 1111"),
    ],
)
async def test_every_brand_has_a_mark_and_a_name(platform, shopper, brand, mark, name, description) -> None:
    jane = await _spanish(shopper)
    card = _card_of(await jane.add(VISA))
    await _set_brand(platform, card, brand)
    listing = await jane.client.get("/payment-methods")
    assert _marks(listing.text) == [(mark, name)]
    assert f"<strong>{description}</strong>" in listing.text
    image = await jane.client.get(f"/static/plugins/cards/brands/{mark}")
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/svg+xml")
    assert image.text.lstrip().startswith("<svg") and 'viewBox="0 0 48 32"' in image.text


async def test_the_widget_and_the_remove_page_show_the_mark_in_spanish(platform, shopper) -> None:
    jane = await _spanish(shopper)
    card = _card_of(await jane.add(VISA))

    overview = await jane.client.get("/")
    assert overview.status_code == 200
    widget = overview.text.split('id="widget-cards-title"', 1)[1].split("</section>", 1)[0]
    assert widget.startswith(">Métodos de pago</h2>")
    assert _marks(widget) == [("visa.svg", "Visa")]
    assert "<strong>Visa terminada en 1111</strong>" in widget and "Predeterminada</span>" in widget
    assert "Caduca: 12/2030" in widget and ">Gestionar métodos de pago</a>" in widget
    assert "Visa terminada en 1111 añadida" in overview.text  # Recent activity

    confirm = await jane.client.get(f"/payment-methods/{card}/remove")
    assert confirm.status_code == 200
    assert '<h1 class="page-title">¿Eliminar Visa terminada en 1111?</h1>' in confirm.text
    assert "<title>Eliminar Visa terminada en 1111 · Greenfield Bakery</title>" in confirm.text
    assert _marks(_main(confirm.text)) == [("visa.svg", "Visa")]
    assert "Visa terminada en 1111, que caduca en 12/2030, dejará de estar registrada." in confirm.text
    assert ">Eliminar tarjeta</button>" in confirm.text and ">Conservarla</a>" in confirm.text

    removed = await jane.post(f"/payment-methods/{card}/remove")
    page = await jane.follow(removed, f"/payment-methods?done=removed&card={card}")
    assert "Visa terminada en 1111 se ha eliminado." in page.text
    assert "Visa terminada en 1111 eliminada" in (await jane.client.get("/")).text


async def test_errors_and_warnings_in_spanish(platform, shopper) -> None:
    jane = await _spanish(shopper)
    declined = await jane.add(DECLINES)
    page = await jane.follow(declined, "/payment-methods/new?error=insufficient_funds")
    assert "Tarjeta no añadida:</strong> Su banco rechazó esta tarjeta por fondos insuficientes." in page.text
    assert '<p class="label" id="card-number-label">Número de tarjeta</p>' in page.text
    assert "Usar como mi tarjeta predeterminada</label>" in page.text and ">Añadir tarjeta</button>" in page.text
    # what the hosted-fields script says while it works, and the fields' titles, in the page's language
    assert 'data-text-saving="Guardando su tarjeta…"' in page.text
    assert 'data-text-expiry="Fecha de caducidad (MM / AA)"' in page.text

    card = _card_of(await jane.add(MASTERCARD))
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch("UPDATE portal_payment_method SET exp_month = 1, exp_year = 2020 WHERE id = $1", card)
    listing = await jane.client.get("/payment-methods")
    assert "Caducada:</strong>" in listing.text and "Caducada</span>" in listing.text
    assert "Mastercard terminada en 4444 caducó a finales de 01/2020." in listing.text
    assert '<a href="/payment-methods/new">Añada una tarjeta nueva</a> para que los pagos continúen.' in listing.text


async def test_english_stays_the_default(platform, shopper) -> None:
    jane = await shopper()
    await jane.add(VISA)
    english = await jane.client.get("/payment-methods")
    assert '<html lang="en"' in english.text and "Expires 12/2030" in english.text
    assert '<h1 class="page-title">Payment methods</h1>' in english.text
    assert _marks(english.text) == [("visa.svg", "Visa")]


@pytest.mark.parametrize(
    ("language", "title", "description", "expires"),
    [
        ("fr", "Moyens de paiement", "Visa se terminant par 1111", "Expire : 12/2030"),
        ("de", "Zahlungsmethoden", "Visa mit Endziffern 1111", "Gültig bis 12.2030"),
        ("pt-BR", "Formas de pagamento", "Visa com final 1111", "Vencimento: 12/2030"),
    ],
)
async def test_the_card_list_in_the_other_languages(platform, shopper, language, title, description, expires) -> None:
    jane = await shopper()
    await jane.add(VISA)
    page = await jane.client.get("/payment-methods", headers={"Accept-Language": language})
    assert f'<h1 class="page-title">{title}</h1>' in page.text
    assert f"<strong>{description}</strong>" in page.text and expires in page.text
    assert _marks(page.text) == [("visa.svg", "Visa")]
    for mark in ("visa.svg", "mastercard.svg"):
        image = await jane.client.get(f"/static/plugins/cards/brands/{mark}")
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/svg+xml")
