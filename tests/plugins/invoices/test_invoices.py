"""The invoice pages as a customer uses them: list, detail, pay, PDF, history, the Overview's figures."""

from __future__ import annotations

import asyncio
import io
import re

import msgspec
from plugins.invoices.conftest import FOOTER, ShopperFactory
from pypdf import PdfReader

from portal.db.engine import fetch, tenant_transaction
from portal_invoices import pdf
from portal_invoices.views import formats_for


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)


async def test_the_list_shows_issued_invoices_newest_first_with_badges_and_filters(shopper: ShopperFactory) -> None:
    jane = await shopper()
    await jane.card()
    older = await jane.invoice(100000, description="Summer catering", days_ago=95, due_in=30)
    paid = await jane.invoice(3900, description="Bread box", days_ago=40)
    form = await jane.form(f"/invoices/{paid.id}/pay")
    assert (await jane.client.post(f"/invoices/{paid.id}/pay", data=form)).status_code == 303
    latest = await jane.invoice(342000, days_ago=2, due_in=21)

    page = await jane.client.get("/invoices")
    assert page.status_code == 200
    rows = re.findall(r'<tr id="(inv_[0-9a-z]+)">', page.text)
    assert rows == [latest.id, paid.id, older.id]
    assert latest.number in page.text and "$3,420.00" in page.text
    row_of = {inv_id: page.text.split(f'<tr id="{inv_id}">')[1].split("</tr>")[0] for inv_id in rows}
    assert ">Open<" in row_of[latest.id]
    assert ">Paid<" in row_of[paid.id]
    assert ">Past due<" in row_of[older.id]

    open_page = await jane.client.get("/invoices?status=open")
    assert re.findall(r'<tr id="(inv_[0-9a-z]+)">', open_page.text) == [latest.id, older.id]
    paid_page = await jane.client.get("/invoices?status=paid")
    assert re.findall(r'<tr id="(inv_[0-9a-z]+)">', paid_page.text) == [paid.id]
    odd = await jane.client.get("/invoices?status=nonsense")
    assert odd.status_code == 200 and len(re.findall(r'<tr id="inv_', odd.text)) == 3
    unknown = await jane.client.get("/invoices?after=garbage")
    assert unknown.status_code == 200 and "You have no invoices" in unknown.text and "Newest invoices" in unknown.text


async def test_pages_of_25_follow_a_cursor(shopper: ShopperFactory) -> None:
    jane = await shopper()
    made = [await jane.invoice(1000 + n, description=f"Order {n}", days_ago=60 - n) for n in range(27)]
    first = await jane.client.get("/invoices")
    ids = re.findall(r'<tr id="(inv_[0-9a-z]+)">', first.text)
    assert ids == [invoice.id for invoice in reversed(made)][:25]
    more = re.search(r'href="/invoices\?after=(inv_[0-9a-z]+)">Older invoices', first.text)
    assert more and more.group(1) == ids[-1]
    second = await jane.client.get(f"/invoices?after={more.group(1)}")
    assert re.findall(r'<tr id="(inv_[0-9a-z]+)">', second.text) == [made[1].id, made[0].id]
    assert "Older invoices" not in second.text and "Newest invoices" in second.text


async def test_the_detail_shows_parties_lines_totals_and_payment_attempts(shopper: ShopperFactory) -> None:
    jane = await shopper()
    await jane.card("4000000000000341")
    invoice = await jane.invoice(342000, tax=27360)
    form = await jane.form(f"/invoices/{invoice.id}/pay")
    declined = await jane.client.post(f"/invoices/{invoice.id}/pay", data=form)
    assert declined.status_code == 303
    page = await jane.client.get(f"/invoices/{invoice.id}")
    assert page.status_code == 200
    text = page.text
    for expected in (
        f"Invoice {invoice.number}", "Greenfield Test", "help@example.test", "Jane Cooper", jane.customer.email,
        "Holiday catering", "$3,420.00", "$273.60", "$3,693.60", "Amount paid", "$0.00",
        "Visa ending in 0341", "Declined", "Do not honor", "Pay $3,693.60", f"/invoices/{invoice.id}.pdf",
    ):  # fmt: skip
        assert expected in text, expected


async def test_paying_with_the_card_on_file_pays_once_however_often_the_form_is_sent(shopper: ShopperFactory) -> None:
    jane = await shopper()
    card = await jane.card()
    invoice = await jane.invoice(342000)
    form = await jane.form(f"/invoices/{invoice.id}/pay")
    assert f'value="{card.id}" checked' in (await jane.client.get(f"/invoices/{invoice.id}/pay")).text
    first = await jane.client.post(f"/invoices/{invoice.id}/pay", data={**form, "card": card.id})
    assert first.status_code == 303 and first.headers["location"] == f"/invoices/{invoice.id}?done=paid"
    again = await jane.client.post(f"/invoices/{invoice.id}/pay", data={**form, "card": card.id})
    assert again.status_code == 303 and again.headers["location"] == f"/invoices/{invoice.id}?done=paid"
    paid = await jane.get(invoice.id)
    assert paid.status == "paid" and paid.amount_paid == 342000 and paid.amount_due == 0
    assert [a["outcome"] for a in await jane.attempts(invoice.id)] == ["approved"]
    assert len(await jane.sales(invoice.id)) == 1
    page = await jane.client.get(first.headers["location"])
    assert f"Thank you! {invoice.number} is paid." in page.text
    assert ">Paid<" in page.text and "Receipt" in page.text
    # A new form for the paid invoice: the pay page goes back to the invoice.
    stale = await jane.client.get(f"/invoices/{invoice.id}/pay")
    assert stale.status_code == 303 and stale.headers["location"] == f"/invoices/{invoice.id}?done=already_paid"


async def test_a_declined_card_leaves_the_invoice_open_with_the_banks_words(shopper: ShopperFactory) -> None:
    jane = await shopper()
    card = await jane.card("4000000000000341")
    invoice = await jane.invoice(342000)
    form = await jane.form(f"/invoices/{invoice.id}/pay")
    declined = await jane.client.post(f"/invoices/{invoice.id}/pay", data={**form, "card": card.id})
    assert declined.status_code == 303
    assert declined.headers["location"] == f"/invoices/{invoice.id}/pay?result={form['pay_key']}"
    page = await jane.client.get(declined.headers["location"])
    assert page.status_code == 200
    assert 'role="alert"' in page.text
    assert "Payment declined. Your bank declined the payment. (“Do not honor”)" in page.text
    assert "the invoice is still open" in page.text
    after = await jane.get(invoice.id)
    assert after.status == "open" and after.amount_due == 342000
    assert [a["outcome"] for a in await jane.attempts(invoice.id)] == ["declined"]


async def test_paying_with_a_new_card_puts_it_on_file_and_pays(shopper: ShopperFactory) -> None:
    jane = await shopper()
    invoice = await jane.invoice(12500)
    page = await jane.client.get(f"/invoices/{invoice.id}/pay")
    assert "You have no card on file that can be charged." in page.text
    form = await jane.form(f"/invoices/{invoice.id}/pay/card")
    paid = await jane.client.post(
        f"/invoices/{invoice.id}/pay/card", data={**form, "payment_token": await jane.token("5555555555554444")}
    )
    assert paid.status_code == 303 and paid.headers["location"] == f"/invoices/{invoice.id}?done=paid"
    assert (await jane.get(invoice.id)).status == "paid"
    detail = await jane.client.get(f"/invoices/{invoice.id}")
    assert "Mastercard ending in 4444" in detail.text


async def test_a_card_the_vault_refuses_says_so_and_charges_nothing(shopper: ShopperFactory) -> None:
    jane = await shopper()
    invoice = await jane.invoice(12500)
    form = await jane.form(f"/invoices/{invoice.id}/pay/card")
    refused = await jane.client.post(
        f"/invoices/{invoice.id}/pay/card", data={**form, "payment_token": await jane.token("4000000000000002")}
    )
    assert refused.status_code == 303
    page = await jane.client.get(refused.headers["location"])
    assert "The new card could not be used." in page.text and "Insufficient funds" in page.text
    assert (await jane.get(invoice.id)).status == "open"
    assert await jane.attempts(invoice.id) == []


async def test_two_tabs_paying_at_the_same_instant_charge_once(shopper: ShopperFactory) -> None:
    jane = await shopper()
    card = await jane.card()
    invoice = await jane.invoice(342000)
    first = await jane.form(f"/invoices/{invoice.id}/pay")
    second = await jane.form(f"/invoices/{invoice.id}/pay")
    assert first["pay_key"] != second["pay_key"]
    path = f"/invoices/{invoice.id}/pay"
    answers = await asyncio.gather(
        jane.client.post(path, data={**first, "card": card.id}),
        jane.client.post(path, data={**second, "card": card.id}),
        jane.client.post(path, data={**first, "card": card.id}),
    )
    assert all(answer.status_code == 303 for answer in answers)
    assert (await jane.get(invoice.id)).status == "paid"
    assert len(await jane.sales(invoice.id)) == 1
    assert [a["outcome"] for a in await jane.attempts(invoice.id)] == ["approved"]


async def test_the_pdf_is_kept_once_issued_and_once_paid(shopper: ShopperFactory) -> None:
    jane = await shopper()
    await jane.card()
    invoice = await jane.invoice(342000)
    issued = await jane.client.get(f"/invoices/{invoice.id}.pdf")
    assert issued.status_code == 200
    assert issued.headers["content-type"] == "application/pdf"
    assert issued.headers["content-disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    text = pdf_text(issued.content)
    for expected in (
        invoice.number, "$3,420.00", "Greenfield Test", "Holiday catering", "Jane Cooper", "help@example.test",
        "https://example.test/terms", FOOTER,
    ):  # fmt: skip
        assert expected in text, expected
    assert "Paid" not in text.replace("Amount paid", "")
    assert (await jane.client.get(f"/invoices/{invoice.id}.pdf")).content == issued.content

    form = await jane.form(f"/invoices/{invoice.id}/pay")
    assert (await jane.client.post(f"/invoices/{invoice.id}/pay", data=form)).status_code == 303
    paid = await jane.client.get(f"/invoices/{invoice.id}.pdf")
    assert paid.content != issued.content
    paid_text = pdf_text(paid.content)
    assert "Paid" in paid_text.replace("Amount paid", "") and invoice.number in paid_text
    assert (await jane.client.get(f"/invoices/{invoice.id}.pdf")).content == paid.content
    async with tenant_transaction(jane.tenant.merchant.iso_id):
        kept = await fetch("SELECT kind, content FROM invoices_pdf WHERE invoice_id = $1 ORDER BY kind", invoice.id)
    assert [(row["kind"], bytes(row["content"])) for row in kept] == [
        ("issued", issued.content),
        ("paid", paid.content),
    ]


async def test_the_history_lists_every_payment_with_receipts(shopper: ShopperFactory) -> None:
    jane = await shopper()
    declining = await jane.card("4000000000000341")
    good = await jane.card("4111111111111111", default=False)
    one = await jane.invoice(3900, description="Bread box")
    two = await jane.invoice(28450, description="Brake pads")
    for invoice, card in ((one, declining), (one, good), (two, good)):
        form = await jane.form(f"/invoices/{invoice.id}/pay")
        answer = await jane.client.post(f"/invoices/{invoice.id}/pay", data={**form, "card": card.id})
        assert answer.status_code == 303
    page = await jane.client.get("/payments")
    assert page.status_code == 200
    assert page.text.count('<tr id="pay_') == 3
    assert "Do not honor" in page.text and "$284.50" in page.text and "$39.00" in page.text
    receipt_ids = re.findall(r'href="/payments/(pay_[0-9a-z]+)"', page.text)
    assert len(receipt_ids) == 2
    receipt = await jane.client.get(f"/payments/{receipt_ids[0]}")
    assert receipt.status_code == 200 and "Receipt" in receipt.text and two.number in receipt.text
    assert "Visa ending in 1111" in receipt.text


async def test_the_overview_shows_outstanding_paid_this_year_and_the_count(shopper: ShopperFactory) -> None:
    jane = await shopper()
    await jane.card()
    paid = await jane.invoice(1864000, description="Catering", days_ago=1)
    form = await jane.form(f"/invoices/{paid.id}/pay")
    assert (await jane.client.post(f"/invoices/{paid.id}/pay", data=form)).status_code == 303
    await jane.invoice(342000)
    await jane.invoice(1250, currency="EUR", description="Shipping to Lyon")
    page = await jane.client.get("/")
    assert page.status_code == 200
    text = page.text
    keys = ("invoices-outstanding", "invoices-paid", "invoices-count", "subscriptions", "cards")
    order = [text.index(f'id="widget-{key}-title"') for key in keys if f'id="widget-{key}-title"' in text]
    assert len(order) >= 3
    assert order == sorted(order)
    outstanding = text.split('id="widget-invoices-outstanding-title"')[1].split("</section>")[0]
    assert "$3,420" in outstanding and "€12.50" in outstanding and "$3,420.00" not in outstanding
    paid_ytd = text.split('id="widget-invoices-paid-title"')[1].split("</section>")[0]
    assert "$18,640" in paid_ytd
    count = text.split('id="widget-invoices-count-title"')[1].split("</section>")[0]
    assert ">3<" in count


async def test_a_theme_overrides_the_pdf_templates(shopper: ShopperFactory) -> None:
    jane = await shopper()
    invoice = await jane.invoice(342000)
    # The test theme "harbor" overrides both templates.
    merchant = msgspec.structs.replace(jane.tenant.merchant, theme_key="harbor")
    themed = msgspec.structs.replace(jane.tenant, merchant=merchant)
    fmt = formats_for(merchant.timezone, merchant.locale)
    context = pdf.context_for(themed, invoice, fmt, {"name": "Jane Cooper", "email": "j@example.com"}, [])
    platform = jane.world.platform
    assert "harbor" in platform.themes.themes, sorted(platform.themes.themes)
    css = platform.themes.render("harbor", "invoices/pdf.css", context)
    assert ".legal { color: #123456; }" in css and "thead th { background: #2e7d32;" in css
    harbor = pdf_text(await asyncio.to_thread(pdf.render, jane.world.platform, themed, context))
    plain = pdf_text(await asyncio.to_thread(pdf.render, jane.world.platform, jane.tenant, context))
    assert "Printed in the Harbor theme." in harbor and invoice.number in harbor
    assert "Printed in the Harbor theme." not in plain and invoice.number in plain
