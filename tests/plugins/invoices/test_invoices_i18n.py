"""The invoice pages, the Overview's figures and the PDF in Spanish (``Accept-Language: es``), English by default."""

from __future__ import annotations

import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from plugins.invoices.conftest import RESTRICTED, ShopperFactory
from pypdf import PdfReader

from portal.db.engine import fetch, tenant_transaction
from portal.i18n import use_translations
from portal_invoices import portal_account_summary

ES = {"Accept-Language": "es"}
NBSP = "\xa0"  # Babel keeps an amount and its currency together


def pdf_text(content: bytes) -> str:
    return " ".join(" ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages).split())


def day_in(at: datetime, locale: str) -> str:
    """The merchant's calendar day of ``at`` (New York) in ``locale``'s medium form (``3 dic 2026`` in es)."""
    return str(format_date(at.astimezone(ZoneInfo("America/New_York")).date(), "medium", locale=locale))


def section(text: str, key: str) -> str:
    return text.split(f'id="widget-{key}-title"')[1].split("</section>")[0]


async def test_the_list_reads_in_spanish_with_spanish_money_and_dates(shopper: ShopperFactory) -> None:
    jane = await shopper()
    invoice = await jane.invoice(123456, currency="EUR", description="Catering de invierno")
    assert invoice.number is not None and invoice.issued_at is not None
    page = await jane.client.get("/invoices", headers=ES)
    assert page.status_code == 200
    text = page.text
    for expected in (
        '<h1 class="page-title">Facturas</h1>', ">Todas<", ">Abiertas<", ">Pagadas<", ">Emisión<", ">Vencimiento<",
        ">Historial de pagos<", "Todas las facturas, de la más reciente a la más antigua", invoice.number,
        f"1.234,56{NBSP}€", day_in(invoice.issued_at, "es"), 'data-label="Estado"',
    ):  # fmt: skip
        assert expected in text, expected
    row = text.split(f'<tr id="{invoice.id}">')[1].split("</tr>")[0]
    assert ">Abierta<" in row and ">Pagar<" in row
    for english in (">Invoices<", ">Open<", ">Issued<", "€1,234.56", "Payment history"):
        assert english not in text, english
    paid_only = await jane.client.get("/invoices?status=paid", headers=ES)
    assert "No tiene facturas pagadas." in paid_only.text

    english = await jane.client.get("/invoices")
    assert '<h1 class="page-title">Invoices</h1>' in english.text and "€1,234.56" in english.text
    assert ">Open<" in english.text and "Facturas" not in english.text


async def test_the_detail_paying_and_a_decline_read_in_spanish(shopper: ShopperFactory) -> None:
    jane = await shopper()
    declining = await jane.card("4000000000000341")
    good = await jane.card("4111111111111111", default=False)
    invoice = await jane.invoice(123456, currency="EUR", description="Catering de invierno")
    detail = await jane.client.get(f"/invoices/{invoice.id}", headers=ES)
    assert detail.status_code == 200
    for expected in (
        f"Factura {invoice.number}", "Facturado a", ">Resumen<", ">Conceptos<", ">Precio unitario<",
        ">Importe pendiente<", f"Pagar 1.234,56{NBSP}€", "Descargar PDF", "Todavía no hay pagos.",
        "Catering de invierno",
    ):  # fmt: skip
        assert expected in detail.text, expected

    pay_page = await jane.client.get(f"/invoices/{invoice.id}/pay", headers=ES)
    assert "Pagar con" in pay_page.text and "Visa terminada en 0341" in pay_page.text
    assert 'data-text-paying="Pagando…"' in pay_page.text  # what the page's script says while paying
    key = re.search(r'name="pay_key" value="([^"]+)"', pay_page.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', pay_page.text)
    assert key and csrf
    form = {"csrf_token": csrf.group(1), "pay_key": key.group(1)}
    declined = await jane.client.post(f"/invoices/{invoice.id}/pay", data={**form, "card": declining.id}, headers=ES)
    assert declined.status_code == 303
    again = await jane.client.get(declined.headers["location"], headers=ES)
    assert "No pagado:" in again.text
    assert "Pago rechazado. Su banco rechazó el pago. («Do not honor»)" in again.text
    assert "la factura sigue abierta" in again.text

    form = await jane.form(f"/invoices/{invoice.id}/pay")
    paid = await jane.client.post(f"/invoices/{invoice.id}/pay", data={**form, "card": good.id}, headers=ES)
    assert paid.status_code == 303
    done = await jane.client.get(paid.headers["location"], headers=ES)
    assert f"¡Gracias! {invoice.number} está pagada." in done.text
    assert ">Pagada<" in done.text and ">Aprobado<" in done.text and ">Rechazado<" in done.text
    assert "Visa terminada en 1111" in done.text and ">Fecha de pago<" in done.text

    history = await jane.client.get("/payments", headers=ES)
    assert "Historial de pagos" in history.text and f"1.234,56{NBSP}€" in history.text and ">Rechazado<" in history.text


async def test_the_overview_figures_are_tiles_in_spanish(shopper: ShopperFactory) -> None:
    jane = await shopper()
    await jane.card()
    paid = await jane.invoice(1864000, description="Catering", days_ago=1)
    form = await jane.form(f"/invoices/{paid.id}/pay")
    assert (await jane.client.post(f"/invoices/{paid.id}/pay", data=form)).status_code == 303
    await jane.invoice(342000)
    await jane.invoice(1250, currency="EUR", description="Envío a Lyon")
    page = await jane.client.get("/", headers=ES)
    assert page.status_code == 200
    outstanding = section(page.text, "invoices-outstanding")
    assert outstanding.startswith(">Pendiente</h2>"), outstanding[:40]
    assert '<link rel="stylesheet" href="/static/plugins/invoices/invoices.css">' in outstanding  # the tiles' styles
    values = re.findall(r'<li class="inv-tile__value">([^<]+)</li>', outstanding)
    assert values == [f"12,50{NBSP}€", f"3.420{NBSP}US$"]
    assert "Pendiente en sus facturas abiertas" in outstanding and "Pagar las facturas abiertas" in outstanding
    paid_ytd = section(page.text, "invoices-paid")
    assert paid_ytd.startswith(">Pagado este año</h2>")
    assert re.findall(r'<li class="inv-tile__value">([^<]+)</li>', paid_ytd) == [f"18.640{NBSP}US$"]
    year = datetime.now(ZoneInfo("America/New_York")).year
    assert f"Pagado desde el 1 ene {year}" in paid_ytd
    count = section(page.text, "invoices-count")
    assert count.startswith(">Facturas</h2>")
    assert '<p class="inv-tile__value">3</p>' in count and "facturas emitidas a su nombre" in count

    english = await jane.client.get("/")
    assert '<p class="inv-tile__value">3</p>' in section(english.text, "invoices-count")
    assert "invoices issued to you" in section(english.text, "invoices-count")
    assert "$18,640" in section(english.text, "invoices-paid")
    assert f"Paid since Jan 1, {year}" in section(english.text, "invoices-paid")


async def test_a_new_customer_sees_quiet_tiles(shopper: ShopperFactory) -> None:
    jane = await shopper()
    page = await jane.client.get("/", headers=ES)
    outstanding = section(page.text, "invoices-outstanding")
    assert "inv-tile--quiet" in outstanding and "Nada pendiente" in outstanding
    assert "Pagar las facturas abiertas" not in outstanding
    assert "Nada todavía" in section(page.text, "invoices-paid")
    assert '<p class="inv-tile__value">0</p>' in section(page.text, "invoices-count")


async def test_a_paid_invoices_pdf_is_kept_once_per_language(shopper: ShopperFactory) -> None:
    jane = await shopper()
    await jane.card()
    invoice = await jane.invoice(123456, currency="EUR", description="Catering de invierno")
    form = await jane.form(f"/invoices/{invoice.id}/pay")
    assert (await jane.client.post(f"/invoices/{invoice.id}/pay", data=form)).status_code == 303
    paid = await jane.get(invoice.id)
    assert paid.status == "paid" and paid.paid_at is not None and invoice.issued_at is not None

    spanish = await jane.client.get(f"/invoices/{invoice.id}.pdf", headers=ES)
    assert spanish.status_code == 200 and spanish.headers["content-type"] == "application/pdf"
    text = pdf_text(spanish.content)
    for expected in (
        f"Factura {invoice.number}", "FACTURADO A", "Importe pendiente", "Importe pagado", "Precio unitario",
        "1.234,56 €", "0,00 €", f"Emitida el {day_in(invoice.issued_at, 'es')}",
        f"Pagada el {day_in(paid.paid_at, 'es')}", "PAGADA", "Visa terminada en 1111", "página 1 de 1",
        "¿Tiene preguntas sobre esta factura? Escriba a help@example.test.", "Catering de invierno",
    ):  # fmt: skip
        assert expected in text, expected
    assert "Amount due" not in text and "€1,234.56" not in text

    english = await jane.client.get(f"/invoices/{invoice.id}.pdf")
    assert english.status_code == 200
    words = pdf_text(english.content)
    for expected in (
        f"Invoice {invoice.number}", "BILLED TO", "Amount due", "€1,234.56", f"Paid {day_in(paid.paid_at, 'en_US')}",
        "Visa ending in 1111", "page 1 of 1",
    ):  # fmt: skip
        assert expected in words, expected
    assert "Factura" not in words and "1.234,56 €" not in words
    assert english.content != spanish.content

    assert (await jane.client.get(f"/invoices/{invoice.id}.pdf", headers=ES)).content == spanish.content
    assert (await jane.client.get(f"/invoices/{invoice.id}.pdf")).content == english.content
    jane.client.cookies.set("portal_language", "es")
    try:
        assert (await jane.client.get(f"/invoices/{invoice.id}.pdf")).content == spanish.content
    finally:
        jane.client.cookies.delete("portal_language")
    async with tenant_transaction(jane.tenant.merchant.iso_id):
        kept = await fetch(
            "SELECT kind, language, content FROM invoices_pdf WHERE invoice_id = $1 ORDER BY language", invoice.id
        )
    assert [(row["kind"], row["language"], bytes(row["content"])) for row in kept] == [
        ("paid", "en", english.content),
        ("paid", "es", spanish.content),
    ]


async def test_billing_details_and_refusals_read_in_spanish(shopper: ShopperFactory) -> None:
    jane = await shopper()
    page = await jane.client.get("/account/billing", headers=ES)
    assert page.status_code == 200
    for expected in ("Datos de facturación", "Nombre o empresa", "Código de país (como US, GB, DE)", "Guardar"):
        assert expected in page.text, expected
    form = await jane.form("/account/billing")
    refused = await jane.client.post(
        "/account/billing", data={**form, "name": "Panadería Sol", "line1": "Calle Mayor 1", "city": "Madrid",
                                  "postal_code": "28013", "country": "XX"}, headers=ES,
    )  # fmt: skip
    assert refused.status_code == 400
    assert "No guardado:" in refused.text
    assert "Código de país (como US, GB, DE) no es un código de país de dos letras (como US, GB, DE)." in refused.text

    far = await shopper(RESTRICTED)
    invoice = await far.invoice(5000)
    blocked = await far.client.get(f"/invoices/{invoice.id}/pay", headers=ES)
    assert blocked.status_code == 403
    assert "Aquí no es posible pagar facturas. Póngase en contacto con el comercio." in blocked.text
    assert "Error 403" in blocked.text and "No disponible" in blocked.text


async def test_the_account_summary_counts_due_invoices_in_the_language(shopper: ShopperFactory) -> None:
    jane = await shopper()
    await jane.invoice(1000)
    await jane.invoice(2000)
    catalogs = jane.world.platform.catalogs
    assert await portal_account_summary(jane.tenant, jane.customer.id) == "2 invoices due"
    with use_translations(catalogs.translations("base", "es"), "es", "es"):
        assert await portal_account_summary(jane.tenant, jane.customer.id) == "2 facturas pendientes"
    with use_translations(catalogs.translations("base", "de"), "de", "de"):
        assert await portal_account_summary(jane.tenant, jane.customer.id) == "2 Rechnungen fällig"
