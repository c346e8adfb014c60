"""Core's pages and sign-in email in the customer's language; the footer's language switch; signing out.

A merchant of its own (English by default) is read by clients that ask for Spanish with
``Accept-Language``, with the language switch's cookie, or through a session whose customer chose
it; its pages, money and email come out in Spanish, and in English for everyone else.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
import pytest_asyncio

from portal.billing import invoices
from portal.billing.models import LineInput
from portal.db.engine import tenant_transaction
from portal.events.bus import Actor
from portal.platform import Platform
from portal.testing import BASE_DOMAIN, ClientFactory, apply_tenants, customer_id

RUN = uuid.uuid4().hex[:6]
SHOP = f"i18n-shop-{RUN}"
HOST = f"{SHOP}.{BASE_DOMAIN}"
NAME = f"Panadería {RUN}"
JANE, LENA, MIA = "jane@globalco.com", "lena@globalco.com", "mia@globalco.com"
SPANISH = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"}
ACTOR = Actor(type="merchant_api_key", id="key_i18n_tests")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

TENANTS = f"""
[[isos]]
slug = "i18n-iso-{RUN}"
name = "Languages ISO"

[[isos.merchants]]
slug = "{SHOP}"
name = "{NAME}"
timezone = "Europe/Madrid"
[isos.merchants.brand]
support_email = "ayuda@panaderia.test"
[isos.merchants.gateway]
key = "sandbox"
[[isos.merchants.customers]]
email = "{JANE}"
name = "Jane Cooper"
[[isos.merchants.customers]]
email = "{LENA}"
name = "Lena Vogel"
[[isos.merchants.customers]]
email = "{MIA}"
name = "Mia Santos"
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(portal_platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    await apply_tenants(portal_platform, TENANTS, tmp_path_factory.mktemp("i18n"))
    return portal_platform


def text_of(html: str) -> str:
    """The page's words: tags removed, spaces (Babel's no-break ones too) folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("\xa0", " ").split())


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html
    return found.group(1)


async def customer_locale(platform: Platform, email: str) -> str | None:
    owner = await asyncpg.connect(platform.settings.database_url)
    try:
        value = await owner.fetchval("SELECT locale FROM portal_customer WHERE id = $1", await customer_id(SHOP, email))
    finally:
        await owner.close()
    return str(value) if value is not None else None


async def issued_invoice(platform: Platform, email: str, amount: int, currency: str) -> str:
    """A finalized (open) invoice of ``amount`` for the customer; its number."""
    tenant = await platform.tenants.resolve(HOST)
    assert tenant is not None
    now = datetime.now(UTC) - timedelta(days=1)
    line = LineInput(description="Pan de masa madre", quantity=1, unit_amount=amount)
    customer = await customer_id(SHOP, email)
    async with tenant_transaction(tenant.merchant.iso_id):
        draft = await invoices.create(
            tenant, customer_id=customer, currency=currency, lines=[line],
            due_at=now + timedelta(days=30), now=now, actor=ACTOR,
        )  # fmt: skip
        invoice = await invoices.finalize(tenant, draft.id, now=now, actor=ACTOR)
    assert invoice.number is not None
    return invoice.number


async def test_the_overview_in_spanish_greets_the_customer_and_writes_money_the_spanish_way(
    platform: Platform, portal_client: ClientFactory, portal_sign_in
) -> None:
    number = await issued_invoice(platform, JANE, 123456, "EUR")
    client = portal_client(HOST)
    await portal_sign_in(client, JANE)

    page = await client.get("/", headers=SPANISH)
    assert page.status_code == 200, page.text
    assert '<html lang="es-ES"' in page.text
    words = text_of(page.text)
    assert "<title>Resumen · " in page.text and '<h1 class="page-title">Resumen</h1>' in page.text
    assert f"Le damos la bienvenida de nuevo, {JANE}" in words
    assert f'<strong class="overview-greeting__email">{JANE}</strong>' in page.text
    assert f"Sesión iniciada como {JANE}" in words and "Cerrar sesión" in words
    assert "Actividad reciente" in words and f"Factura {number} emitida" in words
    assert "1.234,56 €" in words, "money in the Spanish way"
    assert "Vence el" in words and "Ir al contenido principal" in words
    assert "Welcome back" not in words and "Recent activity" not in words and "Sign out" not in words

    english = await client.get("/")
    words = text_of(english.text)
    assert '<html lang="en"' in english.text
    assert f"Welcome back, {JANE}" in words and f"Invoice {number} issued" in words
    assert "€1,234.56" in words and "Resumen" not in words


async def test_the_error_page_in_spanish(platform: Platform, portal_client: ClientFactory) -> None:
    client = portal_client(HOST)
    missing = await client.get("/no-such-page", headers=SPANISH)
    assert missing.status_code == 404
    words = text_of(missing.text)
    assert "Error 404" in words and "Página no encontrada" in words and "No hay nada en esta dirección." in words
    assert "Volver al resumen" in words and "Page not found" not in words

    expired_form = await client.post("/login", data={"email": JANE}, headers=SPANISH)
    assert expired_form.status_code == 403
    words = text_of(expired_form.text)
    assert "No permitido" in words and "Este formulario ha caducado." in words
    assert "Iniciar sesión" in words, "the way to sign in, in Spanish"

    english = await client.get("/no-such-page")
    assert "Page not found" in text_of(english.text) and "Página" not in english.text


async def test_an_unknown_host_answers_in_the_browsers_language(portal_client: ClientFactory) -> None:
    nowhere = portal_client("t-nobody-here.portal.localhost")
    spanish = await nowhere.get("/", headers=SPANISH)
    assert spanish.status_code == 404
    assert "No hay ningún portal en esta dirección." in text_of(spanish.text) and 'lang="es' in spanish.text
    english = await nowhere.get("/")
    assert "There is no portal at this address." in text_of(english.text) and 'lang="en"' in english.text


async def test_the_sign_in_pages_in_spanish(platform: Platform, portal_client: ClientFactory) -> None:
    client = portal_client(HOST)
    form = await client.get("/login", headers=SPANISH)
    assert form.status_code == 200
    words = text_of(form.text)
    assert f"Iniciar sesión en {NAME}" in words and "Correo electrónico" in words
    assert "Enviarme un enlace de inicio de sesión" in words and "no necesita contraseña" in words
    assert "¿Preguntas?" not in words and "Soporte:" in words and "Idioma" in words

    wrong = await client.post(
        "/login", data={"csrf_token": csrf_of(form.text), "email": "not an address"}, headers=SPANISH
    )
    assert wrong.status_code == 400
    assert "Introduzca la dirección de correo electrónico que usa con nosotros" in text_of(wrong.text)

    broken = await client.get("/access/not-a-real-token", headers=SPANISH)
    assert broken.status_code == 400
    words = text_of(broken.text)
    assert "Este enlace no es válido" in words and "Obtener un nuevo enlace de inicio de sesión" in words


async def test_the_language_switch_sets_the_cookie_and_goes_back(
    platform: Platform, portal_client: ClientFactory
) -> None:
    client = portal_client(HOST)
    form = await client.get("/login")
    assert 'action="/language"' in form.text and 'value="/login"' in form.text
    switched = await client.post(
        "/language", data={"csrf_token": csrf_of(form.text), "language": "es", "next": "/login?from=footer"}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/login?from=footer"
    cookie = switched.headers["set-cookie"]
    assert cookie.startswith("portal_language=es;") and "Secure" in cookie and "HttpOnly" in cookie
    again = await client.get("/login")  # no Accept-Language: the cookie decides
    assert f"Iniciar sesión en {NAME}" in text_of(again.text)
    assert '<option value="es" lang="es" selected>' in again.text

    elsewhere = await client.post(
        "/language", data={"csrf_token": csrf_of(again.text), "language": "de", "next": "//evil.example/"}
    )
    assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/"


async def test_the_language_switch_refuses_an_unknown_language_and_a_missing_token(
    platform: Platform, portal_client: ClientFactory
) -> None:
    client = portal_client(HOST)
    token = csrf_of((await client.get("/login")).text)
    unknown = await client.post("/language", data={"csrf_token": token, "language": "xx", "next": "/login"})
    assert unknown.status_code == 400 and "set-cookie" not in unknown.headers
    assert "Unknown language" in text_of(unknown.text)
    refused = await client.post("/language", data={"language": "es", "next": "/login"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert f"Sign in to {NAME}" in text_of((await client.get("/login")).text), "still English"


async def test_a_signed_in_customers_choice_lasts_for_the_session_and_is_stored(
    platform: Platform, portal_client: ClientFactory, portal_sign_in
) -> None:
    client = portal_client(HOST)
    await portal_sign_in(client, LENA)
    assert await customer_locale(platform, LENA) is None
    overview = await client.get("/")
    switched = await client.post("/language", data={"csrf_token": csrf_of(overview.text), "language": "de"})
    assert switched.status_code == 303 and switched.headers["location"] == "/"
    assert await customer_locale(platform, LENA) == "de"

    client.cookies.delete("portal_language")  # the session alone now says German
    page = await client.get("/", headers={"Accept-Language": "fr"})
    words = text_of(page.text)
    assert '<h1 class="page-title">Übersicht</h1>' in page.text and f"Willkommen zurück, {LENA}" in words
    assert "Abmelden" in words


async def _run_worker(platform: Platform) -> None:
    from portal.tasks.worker import run_worker

    await run_worker(platform, poll_interval=0.2)


async def test_the_sign_in_email_is_in_the_language_of_the_page_it_was_asked_from(
    platform: Platform, portal_client: ClientFactory, portal_mail
) -> None:
    client = portal_client(HOST)
    form = await client.get("/login", headers=SPANISH)
    before = portal_mail.last_index
    sent = await client.post("/login", data={"csrf_token": csrf_of(form.text), "email": MIA}, headers=SPANISH)
    assert sent.status_code == 200 and "Revise su correo electrónico" in text_of(sent.text)
    worker = asyncio.create_task(_run_worker(platform))
    try:
        caught = await portal_mail.wait_for(lambda c: c.envelope_to == (MIA,), after=before, seconds=30)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    message = caught.message
    assert message["Subject"] == f"Su enlace de inicio de sesión para {NAME}"
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Hola, Mia Santos:")
    assert "El enlace caduca en 15 minutos y funciona una sola vez." in text
    assert "¿Preguntas? Escriba a ayuda@panaderia.test" in text
    html = message.get_body(("html",)).get_content()
    assert '<html lang="es-ES"' in html and f"Iniciar sesión en {NAME}" in html
    assert "Si el botón no funciona, copie este enlace en su navegador:" in html

    url = re.search(rf"https://{re.escape(HOST)}(/access/\S+)", text)
    assert url is not None, text
    reader = portal_client(HOST)
    landed = await reader.get(url.group(1))
    assert landed.status_code == 303
    page = await reader.get("/")  # the link carries the language: no header needed
    assert f"Le damos la bienvenida de nuevo, {MIA}" in text_of(page.text)


async def test_signing_out_shows_the_signed_out_page(
    platform: Platform, portal_client: ClientFactory, portal_sign_in
) -> None:
    client = portal_client(HOST)
    await portal_sign_in(client, JANE)
    overview = await client.get("/")
    out = await client.post("/logout", data={"csrf_token": csrf_of(overview.text)})
    assert out.status_code == 303 and out.headers["location"] == "/signed-out"
    page = await client.get("/signed-out")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "<title>Signed out · " in page.text and '<h1 class="page-title">You are signed out</h1>' in page.text
    assert f"You have signed out of your {NAME} account." in words
    assert '<a class="button button--primary" href="/login">Sign in again</a>' in page.text
    assert "Signed in as" not in words and 'action="/logout"' not in page.text
    assert (await client.get("/")).status_code == 303, "signed out indeed"

    visitor = portal_client(HOST)  # never signed in: the same page, here in Spanish
    spanish = await visitor.get("/signed-out", headers=SPANISH)
    assert spanish.status_code == 200
    words = text_of(spanish.text)
    assert "Ha cerrado la sesión" in words and "Volver a iniciar sesión" in words


async def test_signing_out_without_a_session_lands_on_the_same_page(
    platform: Platform, portal_client: ClientFactory
) -> None:
    client: httpx.AsyncClient = portal_client(HOST)
    token = csrf_of((await client.get("/login")).text)
    out = await client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/signed-out"
