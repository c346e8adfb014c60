"""Webhook destinations on save: every spelling of a loopback, private or local host is refused.

Host literals are read the way the system resolver reads them (``inet_aton`` for IPv4, with
IPv4 embedded in IPv6 checked too), names are normalised before the local-name check, and
``webhook_allow_private`` lets development installations use them. Nothing here resolves a name
or opens a connection.
"""

from __future__ import annotations

import ipaddress

import msgspec
import pytest
from security.conftest import GREENFIELD, api_key, bearer

from portal.events.destinations import DestinationRefusedError, check_url

API = "api.portal.localhost"


def fullwidth(text: str) -> str:
    """``text`` with its letters and digits in their fullwidth forms (IDNA maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in text)


# (url, the address or the normalised name it means); every one of them is refused by default.
PRIVATE: list[tuple[str, str]] = [
    ("https://2130706433/", "127.0.0.1"),
    ("https://0x7f000001/", "127.0.0.1"),
    ("https://0X7F000001/", "127.0.0.1"),
    ("https://0x7f.0.0.1/", "127.0.0.1"),
    ("https://0x7f.1/", "127.0.0.1"),
    ("https://0177.0.0.1/", "127.0.0.1"),
    ("https://017700000001/", "127.0.0.1"),
    ("https://127.1/", "127.0.0.1"),
    ("https://127.0.0.1./", "127.0.0.1"),
    ("https://127.0.0.1:8443/x", "127.0.0.1"),
    ("https://10.1/", "10.0.0.1"),
    ("https://0/", "0.0.0.0"),
    ("https://0.0.0.0/", "0.0.0.0"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
    ("https://2852039166/", "169.254.169.254"),
    ("https://192.168.1.1/", "192.168.1.1"),
    ("https://172.16.0.1/", "172.16.0.1"),
    ("https://100.64.0.1/", "100.64.0.1"),
    (f"https://{fullwidth('127.0.0.1')}/", "127.0.0.1"),
    ("https://[::1]/", "::1"),
    ("https://[::]/", "::"),
    ("https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
    ("https://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
    ("https://[::ffff:a9fe:a9fe]/", "::ffff:169.254.169.254"),
    ("https://[::127.0.0.1]/", "::7f00:1"),
    ("https://[64:ff9b::a00:1]/", "64:ff9b::a00:1"),
    ("https://[2002:c0a8:101::1]/", "2002:c0a8:101::1"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
    ("https://[fd00::1]/", "fd00::1"),
    ("https://[fec0::1]/", "fec0::1"),
    ("https://[fe80::1%25eth0]/", "fe80::1"),
    ("https://localhost/", "localhost"),
    ("https://LocalHost/", "localhost"),
    ("https://localhost./", "localhost"),
    ("https://foo.localhost./", "foo.localhost"),
    (f"https://{fullwidth('localhost')}/", "localhost"),
    ("https://printer.local/", "printer.local"),
    ("https://printer.local./", "printer.local"),
    ("https://metadata.google.internal/", "metadata.google.internal"),
    ("https://ip6-localhost/", "ip6-localhost"),
]


def ids(cases: list[tuple[str, str]]) -> list[str]:
    return [url.removeprefix("https://").rstrip("/") for url, _ in cases]


def address_or_none(meaning: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(meaning)
    except ValueError:
        return None


@pytest.fixture
def strict(platform, monkeypatch: pytest.MonkeyPatch):
    """The platform with the default policy (another suite may have started it allowing private hosts)."""
    monkeypatch.setattr(platform, "settings", msgspec.structs.replace(platform.settings, webhook_allow_private=False))
    return platform


@pytest.fixture
def lenient(platform, monkeypatch: pytest.MonkeyPatch):
    """The platform as development and tests run it: ``webhook_allow_private = true``."""
    monkeypatch.setattr(platform, "settings", msgspec.structs.replace(platform.settings, webhook_allow_private=True))
    return platform


# --- through the API --------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "meaning"), PRIVATE, ids=ids(PRIVATE))
async def test_private_spellings_are_refused_on_save(strict, portal_client, url: str, meaning: str) -> None:
    key = await api_key(strict, GREENFIELD)
    client = portal_client(API)
    created = await client.post("/api/v1/webhook-endpoints", json={"url": url}, headers=bearer(key))
    assert created.status_code == 422, created.text
    detail = created.json()["detail"]
    assert "The url must not point at a private" in detail
    # The answer names the address the spelling means (or the IPv4 address it embeds), or the name.
    address = address_or_none(meaning)
    named = getattr(address, "ipv4_mapped", None) or address or meaning
    assert str(named) in detail, detail
    endpoint = await client.post(
        "/api/v1/webhook-endpoints", json={"url": "https://hooks.example.invalid/x"}, headers=bearer(key)
    )
    assert endpoint.status_code == 201, endpoint.text
    moved = await client.patch(
        f"/api/v1/webhook-endpoints/{endpoint.json()['id']}", json={"url": url}, headers=bearer(key)
    )
    assert moved.status_code == 422 and moved.json()["detail"] == detail


@pytest.mark.parametrize("url", [url for url, _ in PRIVATE], ids=ids(PRIVATE))
async def test_private_spellings_are_allowed_with_allow_private(lenient, portal_client, url: str) -> None:
    key = await api_key(lenient, GREENFIELD)
    client = portal_client(API)
    created = await client.post("/api/v1/webhook-endpoints", json={"url": url}, headers=bearer(key))
    assert created.status_code == 201, created.text
    assert created.json()["url"] == url  # stored as given; every attempt applies the policy again
    assert (
        await client.delete(f"/api/v1/webhook-endpoints/{created.json()['id']}", headers=bearer(key))
    ).status_code == 204


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://224.0.0.1/", "multicast"),
        ("https://[ff02::1]/", "multicast"),
        ("https://[::ffff:224.0.0.1]/", "multicast"),
    ],
    ids=["ipv4", "ipv6", "mapped"],
)
async def test_multicast_is_refused_even_with_allow_private(lenient, portal_client, url: str, fragment: str) -> None:
    key = await api_key(lenient, GREENFIELD)
    response = await portal_client(API).post("/api/v1/webhook-endpoints", json={"url": url}, headers=bearer(key))
    assert response.status_code == 422 and fragment in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "https://08.0.0.1/",
        "https://1.2.3.4.5/",
        "https://256.256.256.256/",
        "https://0x/",
        "https://%31%32%37.0.0.1/",
        "https://exa mple.com/",
        "https://a..example.com/",
    ],
    ids=["octal-8", "five-parts", "out-of-range", "bare-0x", "percent", "space", "empty-label"],
)
async def test_hosts_that_are_neither_a_name_nor_an_address_are_422(strict, portal_client, url: str) -> None:
    key = await api_key(strict, GREENFIELD)
    response = await portal_client(API).post("/api/v1/webhook-endpoints", json={"url": url}, headers=bearer(key))
    assert response.status_code == 422, response.text
    assert "The url" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/portal?x=1",
        "https://HOOKS.Example.com./portal",
        "https://bücher.example/hook",
        "https://my_hooks.example.com/",
        "https://0x7f.example.com/",
        "https://127.example/",
        "https://93.184.216.34/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://[64:ff9b::5db8:d822]/",
        "https://[2002:5db8:d822::1]/",
    ],
)
async def test_public_destinations_are_accepted(strict, portal_client, url: str) -> None:
    key = await api_key(strict, GREENFIELD)
    client = portal_client(API)
    created = await client.post("/api/v1/webhook-endpoints", json={"url": url}, headers=bearer(key))
    assert created.status_code == 201, created.text
    assert (
        await client.delete(f"/api/v1/webhook-endpoints/{created.json()['id']}", headers=bearer(key))
    ).status_code == 204


# --- the policy function ----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "meaning"), PRIVATE, ids=ids(PRIVATE))
def test_the_policy_refuses_every_spelling(url: str, meaning: str) -> None:
    with pytest.raises(DestinationRefusedError) as refused:
        check_url(url, allow_private=False)
    assert refused.value.detail.startswith("The url must not point at a private")
    assert str(refused.value).startswith("destination refused: ")
    allowed = check_url(url, allow_private=True)
    address = address_or_none(meaning)
    assert allowed.address == address
    assert allowed.host == (meaning if address is None else str(address))


def test_names_are_normalised_for_connecting() -> None:
    destination = check_url("https://HOOKS.Bücher.Example.:8443/a%20b/c?x=1&y=2#frag", allow_private=False)
    assert destination.scheme == "https" and destination.port == 8443
    assert destination.host == "hooks.xn--bcher-kva.example" and destination.address is None
    assert destination.target == "/a%20b/c?x=1&y=2"
    assert destination.host_header == "hooks.xn--bcher-kva.example:8443"
    spaced = check_url("https://hooks.example.com/ü b?q=ä&r=%2F", allow_private=False)
    assert spaced.target == "/%C3%BC%20b?q=%C3%A4&r=%2F"
    plain = check_url("http://hooks.example.com", allow_private=True)
    assert plain.port == 80 and plain.target == "/" and plain.host_header == "hooks.example.com"
    literal = check_url("https://[2606:4700:4700::1111]/x", allow_private=False)
    assert (
        literal.address == ipaddress.ip_address("2606:4700:4700::1111")
        and literal.host_header == "[2606:4700:4700::1111]"
    )


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://hooks.example.com/x", "The url must use https."),
        ("ftp://hooks.example.com/x", "The url must be an absolute https:// URL."),
        ("/relative", "The url must be an absolute https:// URL."),
        ("https://user:pw@hooks.example.com/x", "The url must not carry credentials."),
        ("https://hooks.example.com:99999/", "The url is not valid: Port out of range 0-65535."),
    ],
)
def test_the_policy_keeps_the_url_rules(url: str, detail: str) -> None:
    with pytest.raises(DestinationRefusedError) as refused:
        check_url(url, allow_private=False)
    assert refused.value.detail == detail
