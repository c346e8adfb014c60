"""No input reaches a 5xx: arbitrary text in every route's path, query and body parameters.

The routes are read from the app itself (core's, every plugin's, the API's), so a route added
later is covered without a new test. Requests carry a live session, a valid CSRF token and a
merchant API key, so they get past the front door and reach the handlers. Text includes NUL and
other controls, lone surrogates (sent as invalid UTF-8), very long strings and huge numbers.
Bodies go as the handler expects and also as plain text, multipart, or the other encoding.
They run against a merchant of their own (``t-fuzz``), so what they create touches no other test.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import msgspec
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from security.conftest import api_key, own_merchant, retire_webhooks

from portal.platform import Platform
from portal.testing import apply_tenants, sign_in

SHOP = "t-fuzz-shop.portal.localhost"
API = "api.portal.localhost"
TENANTS = own_merchant(
    "t-fuzz", plugins=("cards", "example", "subscriptions", "invoices", "payment_recovery", "merchant_switch")
)
SKIPPED = {
    "/logout",  # ends the session the other requests need; it takes no input
    "/example/fail/{label}",  # the test plugin's route that fails on purpose (for the error log's tests)
}
FORM_FIELDS = (
    "email", "token", "payment_token", "make_default", "card", "confirm",
    "reason", "note", "duration", "resume_on", "mode", "comment", "price", "quantity", "quoted_at", "quoted_amount",
    "pay_key",
)  # fmt: skip
SANDBOX_FIELDS = ("tokenization_key", "ccnumber", "ccexp", "cvv", "cvv_required")
NOT_PARAMETERS = {"request", "data", "principal", "state", "scope", "headers", "cookies", "socket", "body"}

NASTY = st.sampled_from(
    [
        "\x00", "a\x00b", "\ud800", "\udfff", "x\udc80y", "\r\n", "\t", "\x1b[31m", "\x7f", "\u2028", "\ufeff",
        "9" * 30, "-9223372036854775809", "1e400", "-1", "0", "", " ", "'", '"', "\\", "%00", "%", "..", "../..",
        "😀", "a" * 5000, "{{7*7}}", "<script>", "cus_" + "0" * 26, "NaN", "null", "true", "[]", "{}",
    ]
)  # fmt: skip
TEXT = st.one_of(NASTY, st.text(max_size=40), st.builds(lambda a, b: a + b, NASTY, st.text(max_size=8)))
JSON_VALUE = st.one_of(
    TEXT,
    st.integers(min_value=-(2**80), max_value=2**80),
    st.booleans(),
    st.none(),
    st.lists(TEXT, max_size=3),
    st.dictionaries(TEXT, TEXT, max_size=2),
)


def encoded(text: str) -> str:
    """Percent-encoded bytes of ``text`` (lone surrogates become invalid UTF-8 on purpose)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@dataclass
class Target:
    """One handler of one route: what it takes."""

    path: str
    method: str
    path_parameters: list[str]
    query_parameters: list[str]
    body: str | None  # "json", "form" or None
    json_fields: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.method} {self.path}"


def body_kind(handler: HTTPRouteHandler) -> tuple[str | None, list[str]]:
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return ("json", list(SANDBOX_FIELDS)) if handler.handler_name.endswith("tokenize") else (None, [])
    annotation = data.annotation
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return "json", [f.encode_name for f in msgspec.structs.fields(annotation)]
    return "form", list(FORM_FIELDS)


def targets(app: Litestar) -> list[Target]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format in SKIPPED:
            continue
        for handler in route.route_handlers:
            methods = sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"})
            if not methods:
                continue
            names = set(handler.parsed_fn_signature.parameters) - NOT_PARAMETERS - set(route.path_parameters)
            kind, fields = body_kind(handler)
            for method in methods:
                found.append(
                    Target(route.path_format, method, list(route.path_parameters), sorted(names), kind, fields)
                )
    return found


@dataclass
class Fuzzing:
    targets: list[Target]
    page_client: httpx.AsyncClient
    api_client: httpx.AsyncClient
    csrf: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzzing(shared_tenants: Platform, portal_app: Litestar, tmp_path_factory) -> AsyncIterator[Fuzzing]:
    platform = shared_tenants
    await apply_tenants(platform, TENANTS, tmp_path_factory.mktemp("fuzz"))
    key = await api_key(platform, SHOP)
    transport = httpx.ASGITransport(app=portal_app)  # type: ignore[arg-type]
    pages = httpx.AsyncClient(transport=transport, base_url=f"https://{SHOP}")
    api = httpx.AsyncClient(transport=transport, base_url=f"https://{API}", headers={"authorization": f"Bearer {key}"})
    await sign_in(platform, pages, "jane@globalco.com")
    page = await pages.get("/payment-methods")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    found = targets(portal_app)
    assert len(found) >= 30
    try:
        yield Fuzzing(found, pages, api, csrf.group(1))
    finally:
        await pages.aclose()
        await api.aclose()
        await retire_webhooks(platform, SHOP)


ENCODINGS = ("declared", "declared", "declared", "text/plain", "multipart", "swapped")
"""How a body is sent: as the handler expects (most often), or under another ``Content-Type``."""


def multipart(fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (lone surrogates become invalid UTF-8) and its content type."""
    boundary = "fuzzboundary7MA4YWxkTrZu0gW"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{encoded(name)}"\r\n\r\n'.encode()
        + value.encode("utf-8", "surrogatepass")
        + b"\r\n"
        for name, value in fields
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def send(
    fuzz: Fuzzing,
    target: Target,
    values: dict[str, str],
    body: dict[str, object],
    encoding: str = "declared",
) -> httpx.Response:
    path = target.path
    for name in target.path_parameters:
        path = path.replace("{" + name + "}", encoded(values[name]) or "x")
    query = "&".join(f"{encoded(name)}={encoded(values[name])}" for name in target.query_parameters)
    url = path + (f"?{query}" if query else "")
    client = fuzz.api_client if target.path.startswith("/api/") else fuzz.page_client
    headers = {"x-csrf-token": fuzz.csrf}
    content: bytes | None = None
    pairs = [("csrf_token", fuzz.csrf), *((name, str(value)) for name, value in body.items())]
    kind = target.body
    if kind is not None and encoding == "swapped":
        kind = "form" if kind == "json" else "json"
    if kind == "json":
        headers["content-type"] = "application/json"
        content = json.dumps(body).encode("utf-8", "surrogatepass")
    elif kind == "form":
        headers["content-type"] = "application/x-www-form-urlencoded"
        content = "&".join(f"{encoded(name)}={encoded(value)}" for name, value in pairs).encode()
    if content is not None and encoding == "text/plain":
        headers["content-type"] = "text/plain"
    elif target.method != "GET" and encoding == "multipart":
        content, headers["content-type"] = multipart(pairs)
    return await client.request(target.method, url, content=content, headers=headers)


@st.composite
def requests(draw: st.DrawFn, fuzz: Fuzzing) -> tuple[Target, dict[str, str], dict[str, object], str]:
    target = draw(st.sampled_from(fuzz.targets))
    values = {name: draw(TEXT) for name in (*target.path_parameters, *target.query_parameters)}
    body: dict[str, object] = {}
    if target.body is not None:
        names = draw(st.lists(st.sampled_from(target.json_fields), max_size=len(target.json_fields), unique=True))
        extra = draw(st.dictionaries(TEXT, TEXT, max_size=1))
        for name in names:
            body[name] = draw(JSON_VALUE if target.body == "json" else TEXT)
        body.update(extra)
    return target, values, body, draw(st.sampled_from(ENCODINGS))


async def test_every_target_answers_a_plain_request_below_500(fuzzing) -> None:
    """Each route once with harmless values: the baseline the property below builds on."""
    for target in fuzzing.targets:
        values = dict.fromkeys((*target.path_parameters, *target.query_parameters), "x")
        response = await send(fuzzing, target, values, {})
        assert response.status_code < 500, (target.describe(), response.status_code, response.text[:300])


@settings(
    max_examples=int(os.environ.get("PORTAL_FUZZ_EXAMPLES", "1000")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
async def test_no_input_reaches_a_5xx(fuzzing, data) -> None:
    target, values, body, encoding = data.draw(requests(fuzzing))
    response = await send(fuzzing, target, values, body, encoding)
    assert response.status_code < 500, (target.describe(), encoding, values, body, response.text[:300])
