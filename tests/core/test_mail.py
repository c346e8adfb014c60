"""Mail: rendering, composing, sending over real SMTP, the demo catcher and its pages."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from litestar import Litestar
from litestar.datastructures import State

from portal.config import Settings
from portal.mail import MailCatcher, Mailer, MailError, compose, render_email
from portal.mail.pages import DEMO_MAIL_ROUTES, _preview_policy
from portal.platform import Platform
from portal.tenancy.models import Brand, MerchantView, contrast_color

MAIL_FROM = "portal@mail.portal.test"
LINK = "https://t-cafe.portal.localhost/-/sign-in/abc123DEF?next=%2Fbilling&x=1"
PARSER = BytesParser(_class=EmailMessage, policy=policy.default)


def merchant(
    name: str = 'Café "Zoë", Ltd.', *, color: str = "#2e7d32", theme: str = "base", support: str | None = None
) -> MerchantView:
    return MerchantView(
        id="00000000-0000-0000-0000-000000000001",
        iso_id="00000000-0000-0000-0000-000000000002",
        slug="t-cafe",
        name=name,
        timezone="Europe/Paris",
        locale="fr_FR",
        theme_key=theme,
        brand=Brand(
            color=color,
            contrast_color=contrast_color(color),
            support_email=support,
            terms_url="https://cafe.test/terms",
            privacy_url="https://cafe.test/privacy",
        ),
    )


def settings(port: int, **values: Any) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=5.0, mail_from=MAIL_FROM, **values)


def login_link(platform: Platform, shop: MerchantView, to: str = "jane@globalco.test", name: str = "") -> EmailMessage:
    subject, text, html = render_email(
        platform.themes, shop, "login_link", {"url": LINK, "expires_minutes": 15, "customer_name": name}
    )
    return compose(merchant=shop, to=to, subject=subject, text=text, html=html, mail_from=MAIL_FROM)


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def free_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Inbox:
    """A plain aiosmtpd handler that keeps envelopes; optional refusals and credentials."""

    def __init__(self, refuse: set[str] | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse = refuse or set()
        self.credentials = credentials

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = self.credentials is not None and (data.login.decode(), data.password.decode()) == self.credentials
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


async def serve(inbox: Inbox) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return SMTP(
            inbox,
            hostname="localhost",
            loop=loop,
            authenticator=inbox.authenticate,
            auth_require_tls=False,
        )

    server = await loop.create_server(protocol, host="127.0.0.1", port=0)
    return server, server.sockets[0].getsockname()[1]


@pytest_asyncio.fixture(loop_scope="session")
async def catcher() -> AsyncIterator[MailCatcher]:
    catcher = MailCatcher()
    await catcher.start()
    try:
        yield catcher
    finally:
        await catcher.stop()


# ---- rendering and composing ------------------------------------------------------------------


def test_the_login_link_email_renders_in_the_merchants_brand(portal_platform: Platform) -> None:
    shop = merchant("Smith & Sons", color="#fde047", support="help@cafe.test")
    subject, text, html = render_email(
        portal_platform.themes, shop, "login_link", {"url": LINK, "expires_minutes": 1, "customer_name": "Jane"}
    )
    assert subject == "Your sign-in link for Smith & Sons"
    assert "Smith & Sons" in text and "&amp;" not in text  # plain text is not HTML-escaped
    assert LINK in text and "expires in 1 minute and works once" in text
    assert "Hi Jane," in text and "If you didn't ask for this, you can ignore this email." in text
    assert "help@cafe.test" in text and "https://cafe.test/terms" in text

    assert '<html lang="fr-FR"' in html and "<title>Your sign-in link for Smith &amp; Sons</title>" in html
    assert f'href="{LINK.replace("&", "&amp;")}"' in html
    assert "background-color: #fde047" in html and "color: #111111" in html  # dark text on a light brand
    assert 'href="mailto:help@cafe.test"' in html and 'href="https://cafe.test/privacy"' in html
    assert html.count("<table") == html.count('role="presentation"')
    assert "<script" not in html and 'rel="stylesheet"' not in html


def test_an_unknown_theme_falls_back_to_base_and_theme_chains_apply(portal_platform: Platform) -> None:
    base = render_email(portal_platform.themes, merchant(), "login_link", {"url": LINK, "expires_minutes": 15})
    unknown = render_email(
        portal_platform.themes, merchant(theme="no-such-theme"), "login_link", {"url": LINK, "expires_minutes": 15}
    )
    harbor = render_email(
        portal_platform.themes, merchant(theme="harbor"), "login_link", {"url": LINK, "expires_minutes": 15}
    )
    assert unknown == base == harbor  # harbor has no email overrides: base's, through its chain
    assert base[1].startswith("Hi,\n")  # no customer name


@pytest.mark.parametrize(
    ("locale", "subject", "one_minute", "minutes"),
    [
        ("de", "Ihr Anmeldelink für Smith & Sons", "in 1 Minute ab", "in 15 Minuten ab"),
        ("es", "Su enlace de inicio de sesión para Smith & Sons", "en 1 minuto y", "en 15 minutos y"),
        ("pt-BR", "Seu link de acesso a Smith & Sons", "em 1 minuto e", "em 15 minutos e"),
        (None, "Votre lien de connexion à Smith & Sons", "dans 1 minute et", "dans 15 minutes et"),
    ],
    ids=["de", "es", "pt_BR", "merchant-fr"],
)
def test_the_login_link_email_is_written_in_the_customers_language_else_the_merchants(
    portal_platform: Platform, locale: str | None, subject: str, one_minute: str, minutes: str
) -> None:
    shop = merchant("Smith & Sons", support="help@cafe.test")  # the merchant writes French (fr_FR)
    rendered = {}
    for count in (1, 15):
        values = {"url": LINK, "expires_minutes": count, "customer_name": "Jo"}
        rendered[count] = render_email(
            portal_platform.themes, shop, "login_link", values, catalogs=portal_platform.catalogs, locale=locale
        )
    assert rendered[1][0] == rendered[15][0] == subject
    (_, one_text, one_html), (_, text, html) = rendered[1], rendered[15]
    assert one_minute in one_text and one_minute in one_html and minutes in text and minutes in html
    assert LINK in text and "Jo" in text and "help@cafe.test" in text and "https://cafe.test/terms" in text
    assert "Smith & Sons" in text and "Smith &amp; Sons" in html and "Smith & Sons" not in html
    for english in ("Sign in", "expires in", "Questions?", "If the button", "ignore this email", ">Terms<"):
        assert english not in text and english not in html, english
    assert f'<html lang="{locale or "fr-FR"}"' in html


def test_compose_builds_an_alternative_message_with_encoded_headers() -> None:
    shop = merchant('Café "Zoë", Ltd.', support="help@cafe.test")
    message = compose(
        merchant=shop, to="jane@globalco.test", subject="Hello\nthere", text="Hi", html="<p>Hi</p>", mail_from=MAIL_FROM
    )
    raw = message.as_bytes()
    assert raw.isascii()  # non-ASCII names travel RFC 2047-encoded
    parsed = PARSER.parsebytes(raw)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    sender = parsed["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ('Café "Zoë", Ltd.', MAIL_FROM)
    assert len(parsed["From"].addresses) == 1  # the comma did not split the name into two mailboxes
    assert parsed["Reply-To"].addresses[0].addr_spec == "help@cafe.test"
    assert parsed["Subject"] == "Hello there"
    assert parsed["Message-ID"].endswith("@mail.portal.test>")
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"].datetime is not None

    without_support = compose(
        merchant=merchant(), to="jane@globalco.test", subject="s", text="t", html="<p>h</p>", mail_from=MAIL_FROM
    )
    assert without_support["Reply-To"] is None


@pytest.mark.parametrize("to", ["", "not an address", "jane@globalco.test\r\nBcc: x@evil.test", "Jane <j@x.test>"])
def test_compose_refuses_anything_but_one_plain_address(to: str) -> None:
    with pytest.raises(ValueError, match="not a valid email address"):
        compose(merchant=merchant(), to=to, subject="s", text="t", html="<p>h</p>", mail_from=MAIL_FROM)


# ---- sending ----------------------------------------------------------------------------------


async def test_a_sent_login_link_arrives_at_a_plain_smtp_server(portal_platform: Platform) -> None:
    inbox = Inbox()
    server, port = await serve(inbox)
    try:
        shop = merchant("Müller, Söhne & Co", color="#5b21b6", support="hilfe@mueller.test")
        await Mailer(settings(port)).send(login_link(portal_platform, shop, name="Jane Cooper"))
    finally:
        server.close()
        await server.wait_closed()

    [envelope] = inbox.envelopes
    assert envelope.mail_from == MAIL_FROM and envelope.rcpt_tos == ["jane@globalco.test"]
    assert isinstance(envelope.original_content, bytes)
    received = PARSER.parsebytes(envelope.original_content)
    assert received["From"].addresses[0].display_name == "Müller, Söhne & Co"
    assert parseaddr(str(received["Reply-To"]))[1] == "hilfe@mueller.test"
    assert received["Subject"] == "Your sign-in link for Müller, Söhne & Co"
    text, html = parts(received)
    assert LINK in text and "Hi Jane Cooper," in text
    assert LINK.replace("&", "&amp;") in html and "#5b21b6" in html and "color: #ffffff" in html


async def test_the_catcher_receives_what_the_mailer_sends(portal_platform: Platform, catcher: MailCatcher) -> None:
    assert catcher.port is not None
    shop = merchant(support="help@cafe.test")
    await Mailer(settings(catcher.port)).send(login_link(portal_platform, shop, to="first@globalco.test"))
    await Mailer(settings(catcher.port)).send(login_link(portal_platform, shop, to="second@globalco.test"))

    newest, older = catcher.messages[:2]
    assert newest.index == older.index + 1 and newest.received >= older.received
    assert catcher.message(newest.index) is newest and catcher.message(10_000) is None
    assert newest.envelope_to == ("second@globalco.test",) and newest.envelope_from == MAIL_FROM
    message = newest.message
    assert isinstance(message, EmailMessage)
    assert message["From"].addresses[0].display_name == 'Café "Zoë", Ltd.'
    assert message["Reply-To"].addresses[0].addr_spec == "help@cafe.test"
    assert message["Subject"] == 'Your sign-in link for Café "Zoë", Ltd.'
    text, html = parts(message)
    assert LINK in text and LINK.replace("&", "&amp;") in html and "#2e7d32" in html


async def test_waiting_for_mail_returns_the_message_that_arrives(
    portal_platform: Platform, catcher: MailCatcher
) -> None:
    assert catcher.port is not None
    mailer = Mailer(settings(catcher.port))
    await mailer.send(login_link(portal_platform, merchant(), to="before@globalco.test"))
    after = catcher.last_index
    assert after == catcher.messages[0].index

    waiting = asyncio.create_task(catcher.wait_for(lambda c: c.envelope_to == ("wanted@globalco.test",), after=after))
    await mailer.send(login_link(portal_platform, merchant(), to="other@globalco.test"))
    assert not waiting.done()  # a message that does not match does not end the wait
    await mailer.send(login_link(portal_platform, merchant(), to="wanted@globalco.test"))
    caught = await asyncio.wait_for(waiting, 10)
    assert caught.envelope_to == ("wanted@globalco.test",) and caught.index == after + 2
    # Already there: returned at once, the oldest match first.
    assert (await catcher.wait_for(after=after, seconds=0)).envelope_to == ("other@globalco.test",)


async def test_waiting_for_mail_that_never_comes_raises(portal_platform: Platform, catcher: MailCatcher) -> None:
    assert catcher.port is not None
    after = catcher.last_index
    await Mailer(settings(catcher.port)).send(login_link(portal_platform, merchant(), to="newest@globalco.test"))
    with pytest.raises(TimeoutError, match=r"no matching mail arrived within 0\.2 s") as caught:
        await catcher.wait_for(lambda c: "nobody@globalco.test" in c.envelope_to, after=after, seconds=0.2)
    assert "newest@globalco.test" in str(caught.value)  # what did arrive is named, and never returned instead
    with pytest.raises(TimeoutError):  # nothing after the newest message: no fallback to it
        await catcher.wait_for(after=catcher.last_index, seconds=0.1)


async def test_the_catcher_keeps_only_the_newest_messages(portal_platform: Platform) -> None:
    catcher = MailCatcher(max_messages=3)
    port = await catcher.start()
    try:
        mailer = Mailer(settings(port))
        for number in range(4):
            await mailer.send(login_link(portal_platform, merchant(), to=f"c{number}@globalco.test"))
    finally:
        await catcher.stop()
    assert [caught.envelope_to for caught in catcher.messages] == [
        ("c3@globalco.test",),
        ("c2@globalco.test",),
        ("c1@globalco.test",),
    ]
    assert catcher.message(1) is None  # the oldest fell out
    with pytest.raises(MailError, match="cannot connect"):  # stopped means stopped
        await Mailer(settings(port)).send(login_link(portal_platform, merchant()))


async def test_nothing_listening_is_a_readable_mail_error(portal_platform: Platform) -> None:
    port = free_port()
    with pytest.raises(MailError, match=rf"cannot connect to the mail server 127\.0\.0\.1:{port}") as caught:
        await Mailer(settings(port)).send(login_link(portal_platform, merchant()))
    assert LINK not in str(caught.value)


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_against_a_plain_server_is_a_mail_error_naming_the_setting(
    portal_platform: Platform, catcher: MailCatcher, security: str
) -> None:
    assert catcher.port is not None
    with pytest.raises(MailError, match="PORTAL_SMTP_SECURITY"):
        await Mailer(settings(catcher.port, smtp_security=security)).send(login_link(portal_platform, merchant()))


async def test_a_refused_recipient_is_a_mail_error(portal_platform: Platform) -> None:
    server, port = await serve(Inbox(refuse={"gone@globalco.test"}))
    try:
        with pytest.raises(MailError, match="refused the recipient.*550 5.1.1 mailbox unavailable"):
            await Mailer(settings(port)).send(login_link(portal_platform, merchant(), to="gone@globalco.test"))
    finally:
        server.close()
        await server.wait_closed()


async def test_credentials_are_used_and_a_wrong_password_is_a_mail_error(portal_platform: Platform) -> None:
    inbox = Inbox(credentials=("portal", "s3cret"))
    server, port = await serve(inbox)
    try:
        await Mailer(settings(port, smtp_username="portal", smtp_password="s3cret")).send(
            login_link(portal_platform, merchant())
        )
        assert len(inbox.envelopes) == 1
        with pytest.raises(MailError, match="rejected the SMTP username or password"):
            await Mailer(settings(port, smtp_username="portal", smtp_password="wrong")).send(
                login_link(portal_platform, merchant())
            )
    finally:
        server.close()
        await server.wait_closed()
    assert len(inbox.envelopes) == 1


# ---- demo pages -------------------------------------------------------------------------------


def client_for(state: dict[str, Any]) -> httpx.AsyncClient:
    app = Litestar(route_handlers=DEMO_MAIL_ROUTES, state=State(state))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.localhost")


async def test_the_demo_pages_list_and_show_caught_mail(portal_platform: Platform, catcher: MailCatcher) -> None:
    assert catcher.port is not None
    shop = merchant("Greenfield Bakery", support="help@greenfield.test")
    await Mailer(settings(catcher.port)).send(login_link(portal_platform, shop, to="page@globalco.test"))
    newest = catcher.messages[0]

    async with client_for({"mail_catcher": catcher}) as client:
        listing = await client.get("/-/mail")
        detail = await client.get(f"/-/mail/{newest.index}")
        missing = await client.get("/-/mail/999999")

    assert listing.status_code == 200 and listing.headers["content-type"].startswith("text/html")
    assert "Your sign-in link for Greenfield Bakery" in listing.text
    assert "page@globalco.test" in listing.text and f'href="/-/mail/{newest.index}"' in listing.text
    assert '<html lang="en">' in listing.text and '<th scope="col">Subject</th>' in listing.text
    assert listing.headers["cache-control"] == "no-store"

    assert detail.status_code == 200
    assert "<h1>Your sign-in link for Greenfield Bakery</h1>" in detail.text
    assert "<pre" in detail.text and "works once." in detail.text
    assert f'<a href="{LINK.replace("&", "&amp;")}"' in detail.text  # the link, ready to click
    assert "<iframe sandbox" in detail.text and 'srcdoc="&lt;!doctype html&gt;' in detail.text
    assert 'title="HTML version of the message"' in detail.text
    assert 'role="presentation"' not in detail.text  # the email's markup only exists escaped, in srcdoc
    assert "Auto-Submitted" in detail.text and "auto-generated" in detail.text

    assert missing.status_code == 404


async def test_the_demo_pages_answer_404_without_a_catcher() -> None:
    async with client_for({}) as client:
        assert (await client.get("/-/mail")).status_code == 404
        assert (await client.get("/-/mail/1")).status_code == 404


def test_the_preview_policy_allows_inline_styles_but_no_inline_scripts() -> None:
    # A srcdoc iframe inherits the page's policy; the email's inline styles need 'unsafe-inline',
    # which a nonce in the same directive would switch off.
    directives = dict(
        directive.split(" ", 1) for directive in _preview_policy("n0nce")["content-security-policy"].split("; ")
    )
    assert directives["style-src"] == "'self' 'unsafe-inline'"
    assert directives["script-src"] == "'self' 'nonce-n0nce'"
    assert directives["frame-ancestors"] == "'none'"
    assert _preview_policy("") == {}  # no nonce: the app sends no policy to adjust
