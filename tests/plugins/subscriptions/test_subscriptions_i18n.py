"""The subscription pages in Spanish and German (``Accept-Language``): words, money and dates for the locale.

The default pause reasons are translated; reasons a merchant lists itself are shown as given,
even one that reads like a default.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from plugins.subscriptions.conftest import DEFAULTS, MAIN, PARTIAL, RESTRICTED, World
from plugins.subscriptions.helpers import day, item

from portal.i18n import use_translations
from portal_subscriptions import portal_account_summary
from portal_subscriptions.views import per_interval

ES = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"}
DE = {"Accept-Language": "de-DE,de;q=0.9"}
NBSP = "\u00a0"


def text(page: str) -> str:
    """The page's text, tags dropped and runs of spaces and line breaks collapsed (no-break spaces kept)."""
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def day_in(at: datetime, locale: str) -> str:
    """The merchant's (New York) calendar day of ``at`` in ``locale``'s medium form."""
    return str(format_date(at.astimezone(ZoneInfo("America/New_York")).date(), "medium", locale=locale))


async def test_the_list_reads_in_spanish_and_german_with_their_money_and_dates(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    office = await jane.subscribe(world.prices[MAIN]["Office Breakfast Plan"])

    spanish = await jane.client.get("/subscriptions", headers=ES)
    assert spanish.status_code == 200
    assert '<h1 class="page-title">Suscripciones</h1>' in spanish.text
    assert 'aria-label="Sus suscripciones"' in spanish.text
    listed = item(spanish.text, box.id)
    es_day = day_in(box.current_period_end, "es")
    assert re.fullmatch(r"\d{1,2} [a-z]{3,4}\.? \d{4}", es_day), es_day  # "20 dic 2026", not "Dec 20, 2026"
    assert f"39,00{NBSP}US$ / mes" in listed
    assert f"39,00{NBSP}US$ el {es_day}" in listed
    assert ">Cantidad<" in listed and ">Importe<" in listed and ">Próximo cargo<" in listed
    assert ">Activa<" in listed and "Gestionar" in listed
    assert f"2.890,00{NBSP}US$ / mes" in item(spanish.text, office.id)
    for english in ("$39.00", "Next charge", ">Active<", day(box.current_period_end), ">Subscriptions<"):
        assert english not in spanish.text, english

    german = await jane.client.get("/subscriptions", headers=DE)
    listed = item(german.text, box.id)
    de_day = day_in(box.current_period_end, "de_DE")
    assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", de_day), de_day
    assert f"39,00{NBSP}$ / Monat" in listed and f"39,00{NBSP}$ am {de_day}" in listed
    assert ">Menge<" in listed and ">Betrag<" in listed and ">Nächste Abbuchung<" in listed and ">Aktiv<" in listed
    assert f"2.890,00{NBSP}$ / Monat" in item(german.text, office.id)
    assert '<h1 class="page-title">Abonnements</h1>' in german.text and "$39.00" not in german.text

    english = await jane.client.get("/subscriptions")  # no header: the merchant's en-US
    listed = item(english.text, box.id)
    assert f"$39.00 on {day(box.current_period_end)}" in listed and ">Next charge<" in listed


async def test_the_detail_page_reads_in_spanish_and_german(world: World, shopper) -> None:
    jane = await shopper()
    await jane.card("4111111111111111")
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"], quantity=2)

    page = await jane.client.get(f"/subscriptions/{box.id}", headers=ES)
    assert page.status_code == 200
    body = text(page.text)
    start, end = day_in(box.current_period_start, "es"), day_in(box.current_period_end, "es")
    for expected in (
        "Detalles", f"Precio 39,00{NBSP}US$ / mes", f"Importe 78,00{NBSP}US$ / mes", "Cantidad 2",
        f"Período actual {start} \u2013 {end}", f"Próximo cargo 78,00{NBSP}US$ el {end}",
        "Método de pago Visa terminada en 1111", "Gestionar", "Cambiar plan o cantidad", "Pausar",
        "Cancelar suscripción", "Facturas recientes", "Todas las suscripciones",
    ):  # fmt: skip
        assert expected in body, expected
    for english in ("Details", "Price", "Next charge", "ending in", "Recent invoices", "$78.00"):
        assert english not in body, english

    review = await jane.client.get(f"/subscriptions/{box.id}/change/review?quantity=3", headers=ES)
    assert review.status_code == 200
    assert (
        f"Monthly Bread Box: 2 \u00d7 39,00{NBSP}US$ / mes pasa a ser <strong>3 \u00d7 39,00{NBSP}US$ / mes</strong>, "
        f"117,00{NBSP}US$ / mes en total."
    ) in html.unescape(review.text)
    assert "Cargo ahora:" in review.text and "Confirmar cambio" in review.text

    page = await jane.client.get(f"/subscriptions/{box.id}", headers=DE)
    body = text(page.text)
    end = day_in(box.current_period_end, "de_DE")
    for expected in (
        f"Preis 39,00{NBSP}$ / Monat", f"Betrag 78,00{NBSP}$ / Monat", f"Nächste Abbuchung 78,00{NBSP}$ am {end}",
        "Zahlungsmethode Visa mit Endziffern 1111", "Pausieren",
        "Abonnement kündigen", "Letzte Rechnungen",
    ):  # fmt: skip
        assert expected in body, expected


async def test_the_pause_pages_read_in_spanish_and_german(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    path = f"/subscriptions/{box.id}/pause"

    page = await jane.client.get(path, headers=ES)
    assert page.status_code == 200
    body = text(page.text)
    assert (
        "Pausar Monthly Bread Box" in body and "¿Por qué hace una pausa?" in body and "¿Durante cuánto tiempo?" in body
    )
    for label in ("Demasiado caro", "Estoy de viaje", "Tengo demasiado", "Otro"):  # the defaults, translated
        assert f">{label}</label>" in page.text, label
    assert 'value="Travelling"' in page.text  # the value sent stays the reason itself
    assert re.search(r"1 período de facturación \(se reanuda el [^)]+\)", body), body
    assert re.search(r"2 períodos de facturación \(se reanuda el [^)]+\)", body), body
    assert "Hasta una fecha que yo elija" in body and "Too expensive" not in body

    refused = await jane.client.get(f"{path}/review?duration=1", headers=ES)  # no reason: the form again
    assert refused.status_code == 400 and "Elija un motivo." in refused.text and "Revise lo siguiente:" in refused.text

    review = await jane.client.get(f"{path}/review?reason=Travelling&note=&duration=1", headers=ES)
    assert review.status_code == 200
    summary = text(review.text)
    skipped = day_in(box.current_period_end, "es")
    assert "Motivo Estoy de viaje" in summary
    assert re.search(rf"Sin cargos hasta el (.+?) \(se omite el cargo del {re.escape(skipped)}\)\.", summary), summary
    assert f"se cobrarán 39,00{NBSP}US$ el" in summary and "Su suscripción se reanuda automáticamente el" in summary

    german = text((await jane.client.get(f"{path}/review?reason=Travelling&note=&duration=1", headers=DE)).text)
    assert "Grund Ich bin auf Reisen" in german and f"werden 39,00{NBSP}$ abgebucht" in german
    assert f"die Abbuchung am {day_in(box.current_period_end, 'de_DE')} entfällt" in german
    form = text((await jane.client.get(path, headers=DE)).text)
    assert "Zu teuer" in form and re.search(r"1 Abrechnungszeitraum \(Fortsetzung am \d{2}\.\d{2}\.\d{4}\)", form)

    paused = await jane.client.post(
        path, data={"csrf_token": await jane.csrf(), "reason": "Travelling", "note": "Back in March", "duration": "1"}
    )
    assert paused.status_code == 303, paused.text
    detail = text((await jane.client.get(paused.headers["location"], headers=ES)).text)
    resumes = (await jane.subscription(box.id)).resumes_at
    assert resumes is not None
    assert "Hecho: Monthly Bread Box está en pausa." in detail
    assert f"En pausa hasta el {day_in(resumes, 'es')}" in detail
    assert "En pausa porque Estoy de viaje \u2014 Back in March" in detail  # the customer's note as written


async def test_a_merchants_own_pause_reasons_are_shown_as_given(world: World, shopper) -> None:
    sam = await shopper(PARTIAL)  # lists its own reasons: ["Travelling"]
    box = await sam.subscribe(world.prices[PARTIAL]["Monthly Bread Box"])
    page = await sam.client.get(f"/subscriptions/{box.id}/pause", headers=ES)
    assert page.status_code == 200
    assert ">Travelling</label>" in page.text and "Estoy de viaje" not in page.text
    assert "¿Por qué hace una pausa?" in page.text  # the page itself is in Spanish
    review = text((await sam.client.get(f"/subscriptions/{box.id}/pause/review?reason=Travelling&duration=1",
                                        headers=ES)).text)  # fmt: skip
    assert "Motivo Travelling" in review

    paused = await sam.client.post(
        f"/subscriptions/{box.id}/pause",
        data={"csrf_token": await sam.csrf(), "reason": "Travelling", "note": "", "duration": "1"},
    )
    assert paused.status_code == 303, paused.text
    detail = text((await sam.client.get(f"/subscriptions/{box.id}", headers=ES)).text)
    assert "En pausa porque Travelling" in detail and "Estoy de viaje" not in detail

    dana = await shopper(DEFAULTS)  # the defaults: translated
    other = await dana.subscribe(world.prices[DEFAULTS]["Monthly Bread Box"])
    defaults = await dana.client.get(f"/subscriptions/{other.id}/pause", headers=ES)
    assert ">Estoy de viaje</label>" in defaults.text and ">Travelling</label>" not in defaults.text


async def test_cancel_reasons_refusals_and_the_overview_in_spanish(world: World, shopper) -> None:
    jane = await shopper()
    box = await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    form = text((await jane.client.get(f"/subscriptions/{box.id}/cancel", headers=ES)).text)
    assert "Cancelar Monthly Bread Box" in form and "Es demasiado caro" in form and "Otro motivo" in form
    assert "It's too expensive" not in form
    review = text(
        (await jane.client.get(f"/subscriptions/{box.id}/cancel/review?mode=period_end&reason=unused",
                               headers=ES)).text
    )  # fmt: skip
    assert "Motivo No lo uso lo suficiente" in review
    assert f"Su suscripción sigue activa hasta el {day_in(box.current_period_end, 'es')}" in review

    locked = await shopper(RESTRICTED)
    other = await locked.subscribe(world.prices[locked.slug]["Monthly Bread Box"])
    refused = await locked.client.get(f"/subscriptions/{other.id}/pause", headers=ES)
    assert refused.status_code == 403
    assert "Aquí no es posible pausar suscripciones. Póngase en contacto con Locked Down en help@example.test." in (
        text(refused.text)
    )

    overview = text((await jane.client.get("/", headers=ES)).text)
    assert "1 activa" in overview and "Gestionar suscripciones" in overview
    assert f"Próximo cargo: 39,00{NBSP}US$ el {day_in(box.current_period_end, 'es')} (Monthly Bread Box)" in overview


async def test_intervals_and_the_account_summary_follow_the_language(world: World, shopper) -> None:
    catalogs = world.platform.catalogs
    with use_translations(catalogs.translations("base", "es"), "es", "es"):
        assert per_interval(f"39,00{NBSP}US$", "month", 1) == f"39,00{NBSP}US$ / mes"
        assert per_interval(f"39,00{NBSP}US$", "month", 2) == f"39,00{NBSP}US$ cada 2 meses"
        assert per_interval("X", "week", 3) == "X cada 3 semanas"
    with use_translations(catalogs.translations("base", "de"), "de_DE", "de"):
        assert per_interval("X", "year", 2) == "X alle 2 Jahre" and per_interval("X", "day", 1) == "X / Tag"
    assert per_interval("$39.00", "month", 2) == "$39.00 every 2 months"

    jane = await shopper()
    await jane.subscribe(world.prices[MAIN]["Monthly Bread Box"])
    await jane.subscribe(world.prices[MAIN]["Family Bread Box"])
    with use_translations(catalogs.translations("base", "fr"), "fr", "fr"):
        assert await portal_account_summary(tenant=jane.tenant, customer_id=jane.customer.id) == "2 abonnements"
    assert await portal_account_summary(tenant=jane.tenant, customer_id=jane.customer.id) == "2 subs"
