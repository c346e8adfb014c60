"""CSRF on every form POST; email sign-in that never tells whether an address is known."""

from __future__ import annotations

import asyncio
import re

import pytest
from security.conftest import GREENFIELD, issue, tenant_at

from portal.access.login_task import email_login_link

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NONCE = re.compile(r"nonce-[A-Za-z0-9_-]+|nonce=\"[^\"]+\"")


async def _form(client, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200
    return CSRF.search(page.text).group(1)  # type: ignore[union-attr]


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
@pytest.mark.parametrize("path", ["/login", "/logout", "/access/resend"])
async def test_form_posts_without_the_right_csrf_token_are_403(platform, land, token, path: str) -> None:
    link = await issue(platform, GREENFIELD)
    client, _ = await land(GREENFIELD, link.token)  # signed in: the token is tied to the session
    data = {"email": "jane@globalco.com", "token": "x"}
    if token:
        data["csrf_token"] = token
    response = await client.post(path, data=data)
    assert response.status_code == 403
    assert (await client.get("/")).status_code == 200  # still signed in: logout did not happen


async def test_a_token_from_another_session_is_refused(platform, land) -> None:
    mine, _ = await land(GREENFIELD, (await issue(platform, GREENFIELD)).token)
    theirs, _ = await land(GREENFIELD, (await issue(platform, GREENFIELD)).token)
    their_token = await _form(theirs, "/login")
    response = await mine.post("/logout", data={"csrf_token": their_token})
    assert response.status_code == 403


async def _signed_in(platform, land):
    """A client signed in at Greenfield (through a fresh link) and its session cookie."""
    client, landed = await land(GREENFIELD, (await issue(platform, GREENFIELD)).token)
    assert landed.status_code == 303
    return client, client.cookies.get("__Host-portal_session")


@pytest.mark.parametrize("carrier", ["field", "header"])
@pytest.mark.parametrize("token", ["missing", "wrong", "other_session", "right"])
async def test_logout_needs_this_sessions_csrf_token_in_the_field_or_the_header(
    platform, land, portal_client, carrier: str, token: str
) -> None:
    client, session = await _signed_in(platform, land)
    other, _ = await _signed_in(platform, land)
    values = {
        "missing": "",
        "wrong": "wrong-token",
        "other_session": await _form(other, "/"),
        "right": await _form(client, "/"),
    }
    value = values[token]
    assert values["other_session"] != values["right"]
    if carrier == "field":
        response = await client.post("/logout", data={"csrf_token": value} if value else {})
    else:  # the header alone, with a form that carries no token ("missing" sends an empty header)
        response = await client.post("/logout", headers={"X-CSRF-Token": value}, data={"unrelated": "1"})
    replay = portal_client(GREENFIELD)
    replay.cookies.set("__Host-portal_session", session, domain=GREENFIELD, path="/")
    if token == "right":
        assert response.status_code == 303 and response.headers["location"] == "/signed-out"
        assert (await replay.get("/")).status_code == 303  # the session ended on the server
    else:
        assert response.status_code == 403 and "This form has expired" in response.text
        assert (await replay.get("/")).status_code == 200  # still signed in: nothing happened
    assert (await other.get("/")).status_code == 200  # the other session is never touched


@pytest.mark.parametrize("token", ["", "wrong-token", "right"], ids=["missing", "wrong", "right"])
async def test_anonymous_forms_take_the_token_in_the_header_too(platform, portal_client, token: str) -> None:
    client = portal_client("t-apex.portal.localhost")
    right = await _form(client, "/login")
    response = await client.post(
        "/login",
        headers={"X-CSRF-Token": right if token == "right" else token},
        data={"email": "nobody@example.com"},
    )
    assert response.status_code == (200 if token == "right" else 403)


async def test_anonymous_forms_use_a_host_cookie(platform, portal_client) -> None:
    client = portal_client("t-apex.portal.localhost")
    page = await client.get("/login")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-portal_csrf=") and "Secure" in cookie and "HttpOnly" in cookie
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    response = await client.post("/login", data={"csrf_token": token, "email": "nobody@example.com"})
    assert response.status_code == 200


async def test_login_answers_alike_for_known_and_unknown_addresses(platform, portal_client) -> None:
    answers = []
    for email in ("jane@globalco.com", "not-a-customer@globalco.com"):
        client = portal_client("t-northwind.portal.localhost")
        token = await _form(client, "/login")
        response = await client.post("/login", data={"csrf_token": token, "email": email})
        answers.append((response.status_code, CSRF.sub("", NONCE.sub("", response.text))))  # both differ per browser
    assert answers[0] == answers[1]
    assert answers[0][0] == 200 and "Check your email" in answers[0][1]


async def test_login_is_rate_limited_per_address(platform, portal_client) -> None:
    statuses = []
    for attempt in range(platform.settings.login_rate_per_email + 1):
        client = portal_client("t-pinnacle.portal.localhost")
        token = await _form(client, "/login")
        response = await client.post(
            "/login",
            data={"csrf_token": token, "email": "Limited@Example.com" if attempt % 2 else "limited@example.com "},
        )
        statuses.append(response.status_code)
    assert statuses[:-1] == [200] * platform.settings.login_rate_per_email
    assert statuses[-1] == 429


async def test_the_emailed_link_signs_the_customer_in_once(platform, portal_mail, portal_client) -> None:
    tenant = await tenant_at(platform, GREENFIELD)
    before = portal_mail.last_index
    assert (
        await email_login_link(platform, tenant.merchant.iso_id, tenant.merchant.id, "stranger@globalco.com") is False
    )
    assert await email_login_link(platform, tenant.merchant.iso_id, tenant.merchant.id, "JANE@globalco.com") is True
    caught = await portal_mail.wait_for(lambda c: c.envelope_to == ("jane@globalco.com",), after=before)
    # Jane's email was sent after the stranger's request was decided: nothing went to the stranger.
    assert not [c for c in portal_mail.messages if c.index > before and "stranger@globalco.com" in c.envelope_to]
    message = caught.message
    assert message["To"] == "jane@globalco.com"
    assert "Greenfield Bakery" in message["From"] and message["Subject"] == "Your sign-in link for Greenfield Bakery"
    text = message.get_body(("plain",)).get_content()
    # Greenfield has a custom domain, so its links use it.
    url = re.search(r"https://portal\.greenfield\.test/access/(pt1\.[A-Za-z0-9_.-]+)", text)
    assert url is not None, text
    first = await portal_client("portal.greenfield.test").get(f"/access/{url.group(1)}")
    second = await portal_client(GREENFIELD).get(f"/access/{url.group(1)}")
    assert first.status_code == 303 and second.status_code == 410


async def test_framing_is_refused_unless_the_merchant_allows_origins(platform, portal_client, tmp_path) -> None:
    from portal.testing import apply_tenants

    text = (
        '[[isos]]\nslug = "t-embed-iso"\nname = "Embed ISO"\n[[isos.merchants]]\nslug = "t-embed"\nname = "Embed"\n'
        'frame_ancestors = ["https://shop.example.com", "https://app.example.com:8443"]\n'
    )
    assert await apply_tenants(platform, text, tmp_path)
    assert await apply_tenants(platform, text, tmp_path) == []  # idempotent with a list value
    allowed = await portal_client("t-embed.portal.localhost").get("/login")
    csp = allowed.headers["content-security-policy"]
    assert "frame-ancestors https://shop.example.com https://app.example.com:8443" in csp
    assert "x-frame-options" not in allowed.headers
    default = await portal_client(GREENFIELD).get("/login")
    assert "frame-ancestors 'none'" in default.headers["content-security-policy"]
    assert default.headers["x-frame-options"] == "DENY"


async def test_security_headers_and_https_redirect(platform, portal_app) -> None:
    import httpx

    transport = httpx.ASGITransport(app=portal_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t-greenfield.example.net") as plain:
        redirected = await plain.get("/login?next=1")
    assert redirected.status_code == 308
    assert redirected.headers["location"] == "https://t-greenfield.example.net/login?next=1"
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{GREENFIELD}") as secure:
        page = await secure.get("/login")
    assert page.headers["strict-transport-security"].startswith("max-age=31536000")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"]).group(1)  # type: ignore[union-attr]
    assert f'nonce="{nonce}"' in page.text and "script-src 'self' 'nonce-" in page.headers["content-security-policy"]
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{GREENFIELD}") as local:
        assert (await local.get("/login")).status_code == 200  # *.localhost is a secure context already


async def test_an_expired_genuine_link_offers_a_fresh_one_by_email(platform, portal_mail, portal_client) -> None:
    from security.conftest import mint

    token = await mint(
        platform, "t-apex.portal.localhost", exp=1_000_000_600, iat=1_000_000_000, jti="expired_resend_1"
    )
    client = portal_client("t-apex.portal.localhost")
    page = await client.get(f"/access/{token}")
    assert page.status_code == 410 and "has expired" in page.text and "Email me a new link" in page.text
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    before = portal_mail.last_index
    sent = await client.post("/access/resend", data={"csrf_token": csrf, "token": token})
    assert sent.status_code == 200 and "Check your email" in sent.text
    worker = asyncio.create_task(_run_worker(platform))  # earlier tests' queued mail may arrive too
    try:
        caught = await portal_mail.wait_for(lambda c: "Apex Auto Parts" in str(c.message["Subject"]), after=before)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    assert caught.message["To"] == "jane@globalco.com"


async def _run_worker(platform) -> None:
    from portal.tasks.worker import run_worker

    await run_worker(platform, poll_interval=0.2)
