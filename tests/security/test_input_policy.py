"""The input policy at the edge: text the database cannot hold is refused with a clear 4xx, never a 500."""

from __future__ import annotations

import asyncpg
import pytest
from security.conftest import GREENFIELD, api_key, bearer, mint

from portal.db.engine import fetch, tenant_transaction
from portal.ids import new_id
from portal.testing import customer_id
from support.queue import tasks_queued

API = "api.portal.localhost"
NUL = "\u0000"


def assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    if field is not None:
        assert field in body["detail"], body
    return body


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/customers", {"email": f"a{NUL}b@example.com"}, "email"),
        ("/api/v1/customers", {"email": "nul-name@example.com", "name": f"Jane{NUL}"}, "name"),
        ("/api/v1/customers", {"email": "nul-ref@example.com", "external_ref": f"r{NUL}1"}, "external_ref"),
        ("/api/v1/webhook-endpoints", {"url": "https://hooks.example.com/x", "description": f"d{NUL}"}, "description"),
        ("/api/v1/customers", {"email": "bell@example.com", "name": "Ja\u0007ne"}, "name"),
        ("/api/v1/customers", {"email": "lf@example.com", "name": "Jane\nCooper"}, "name"),
    ],
    ids=["email", "name", "external_ref", "description", "bell", "newline-in-single-line"],
)
async def test_control_characters_in_json_fields_are_refused_naming_the_field(
    platform, portal_client, path, body, field
) -> None:
    key = await api_key(platform, GREENFIELD)
    response = await portal_client(API).post(path, json=body, headers=bearer(key))
    assert_problem(response, 400, field)


async def test_a_nul_in_a_portal_sessions_return_url_is_refused(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    response = await portal_client(API).post(
        "/api/v1/portal-sessions",
        json={"customer": jane, "return_url": f"https://greenfield.test/{NUL}"},
        headers=bearer(key),
    )
    assert_problem(response, 400, "return_url")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/customers?email=a%00b@example.com",
        "/api/v1/customers?external_ref=%00",
        "/api/v1/webhook-deliveries?starting_after=%00",
        "/api/v1/webhook-deliveries?event_type=a%00",
        "/api/v1/audit-events?customer=%00",
        "/api/v1/audit-events?action=%00",
        "/api/v1/customers/cus_%00",
        "/api/v1/webhook-endpoints/we_%00",
        "/api/v1/webhook-deliveries/wd_%00",
        "/api/v1/customers?email=%ff%fe@example.com",
    ],
)
async def test_nul_and_bad_utf8_in_query_parameters_and_path_ids_are_refused(platform, portal_client, url) -> None:
    key = await api_key(platform, GREENFIELD)
    response = await portal_client(API).get(url, headers=bearer(key))
    assert_problem(response, 400)


async def test_a_cursor_too_large_for_the_database_is_refused(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    response = await portal_client(API).get(
        "/api/v1/audit-events?starting_after=99999999999999999999999", headers=bearer(key)
    )
    assert_problem(response, 400, "starting_after")


async def test_a_body_that_is_not_utf8_is_refused(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    response = await portal_client(API).post(
        "/api/v1/customers",
        content=b'{"email": "\xff\xfe@example.com"}',
        headers={**bearer(key), "content-type": "application/json"},
    )
    assert_problem(response, 400)


async def test_json_nested_too_deep_is_refused(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    deep = "[" * 1000 + "]" * 1000
    response = await portal_client(API).post(
        "/api/v1/customers",
        content=('{"email": "deep@example.com", "name": ' + deep + "}").encode(),
        headers={**bearer(key), "content-type": "application/json"},
    )
    assert_problem(response, 400)


async def test_a_json_integer_outside_64_bits_is_refused(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    response = await portal_client(API).post(
        "/api/v1/portal-sessions",
        content=f'{{"customer": "{jane}", "expires_in": {10**30}}}'.encode(),
        headers={**bearer(key), "content-type": "application/json"},
    )
    assert_problem(response, 400, "expires_in")


async def test_nothing_was_written_by_refused_requests(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    response = await client.post("/api/v1/customers", json={"email": f"ghost{NUL}@example.com"}, headers=bearer(key))
    assert response.status_code == 400
    tenant = await platform.tenants.resolve(GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch("SELECT id FROM portal_customer WHERE email LIKE 'ghost%'")
    assert rows == []


async def test_a_nul_in_the_login_form_gets_a_readable_page_and_queues_nothing(platform, portal_client) -> None:
    client = portal_client(GREENFIELD)
    form = await client.get("/login")
    csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    owner = await asyncpg.connect(platform.settings.database_url)
    before = await tasks_queued(owner)
    response = await client.post("/login", data={"email": f"jane{NUL}@globalco.com", "csrf_token": csrf})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "Check your email" not in response.text
    assert "The field &#39;email&#39; contains a control character (U+0000)." in response.text
    assert await tasks_queued(owner) == before
    ok = await client.post("/login", data={"email": "nobody@example.com", "csrf_token": csrf})
    assert ok.status_code == 200
    assert await tasks_queued(owner) == before + 1  # the count does see a queued task
    await owner.close()


async def test_a_nul_in_a_page_path_or_query_is_a_readable_400(platform, portal_client) -> None:
    client = portal_client(GREENFIELD)
    for url in ("/login?next=%00", "/access/pt1.%00", "/payment-methods/pm_%00/remove"):
        response = await client.get(url)
        assert response.status_code == 400, url
        assert response.headers["content-type"].startswith("text/html")


async def test_a_tab_cr_or_lf_is_allowed_where_a_field_allows_it(platform, portal_client) -> None:
    """Free text (a webhook endpoint's description) may span lines; single-line fields may not."""
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    created = await client.post(
        "/api/v1/webhook-endpoints",
        json={"url": "https://hooks.example.com/multi", "description": "Line one\r\nLine two\tand a tab"},
        headers=bearer(key),
    )
    assert created.status_code == 201, created.text
    assert created.json()["description"] == "Line one\r\nLine two\tand a tab"
    await client.delete(f"/api/v1/webhook-endpoints/{created.json()['id']}", headers=bearer(key))


async def test_a_well_signed_link_for_an_unknown_customer_is_an_invalid_link(platform, land) -> None:
    token = await mint(platform, GREENFIELD, customer=new_id("cus"))  # well formed, but nobody's
    _, response = await land(GREENFIELD, token)
    assert response.status_code == 400
    assert "link" in response.text.lower()


async def test_a_well_signed_link_for_another_merchants_customer_is_an_invalid_link(platform, land) -> None:
    foreign = await customer_id("t-pinnacle", "jane@globalco.com")
    token = await mint(platform, GREENFIELD, customer=foreign)
    _, response = await land(GREENFIELD, token)
    assert response.status_code == 400


async def test_a_static_file_name_too_long_for_the_file_system_is_not_found(platform, portal_client) -> None:
    response = await portal_client(GREENFIELD).get("/static/themes/base/" + "a" * 5000)
    assert response.status_code == 404


async def test_a_task_is_not_queued_with_arguments_that_could_never_be_stored(platform) -> None:
    """The input policy for tasks: refused when queued (a 400 for the request), never failing on every try."""
    from portal.access.login_task import send_login_link
    from portal.db.engine import tenant_transaction
    from portal.tasks.durable import queue_task
    from portal.web.input_policy import InputRefusedError

    tenant = await platform.tenants.resolve(GREENFIELD)
    assert tenant is not None
    owner = await asyncpg.connect(platform.settings.database_url)
    before = await tasks_queued(owner)
    with pytest.raises(InputRefusedError) as refused:
        async with tenant_transaction(tenant.merchant.iso_id):
            await queue_task(send_login_link, {"email": f"jane{NUL}@globalco.com"}, merchant_id=tenant.merchant.id)
    assert refused.value.status_code == 400
    assert "argument email" in refused.value.detail
    assert await tasks_queued(owner) == before
    await owner.close()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"url": "https://hooks.example.com/t", "description": "esc\\u001b[31m"}'),
        ("text/plain", b'{"url": "https://hooks.example.com/t", "description": "\xff"}'),
        ("application/x-www-form-urlencoded", b'{"url": "https://hooks.example.com/t", "description": "\\u0000"}'),
    ],
    ids=["escape-as-text", "bad-utf8-as-text", "nul-as-form"],
)
async def test_json_under_another_content_type_is_checked_as_json(platform, portal_client, content_type, body) -> None:
    """Litestar reads a JSON body whatever Content-Type says, so the policy does too."""
    key = await api_key(platform, GREENFIELD)
    response = await portal_client(API).post(
        "/api/v1/webhook-endpoints", content=body, headers={**bearer(key), "content-type": content_type}
    )
    assert_problem(response, 400)


async def test_multipart_forms_are_refused_where_no_handler_reads_multipart(platform, portal_client) -> None:
    client = portal_client(GREENFIELD)
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\n'.encode()
        + b"jane\xff@globalco.com\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    for path in ("/login", "/logout", "/access/resend"):
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code == 415, (path, response.status_code)
        assert "x-www-form-urlencoded" in response.text
