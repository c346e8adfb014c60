"""Delivery connects to the address it checked: one lookup per attempt, no second one by the HTTP client.

DNS is the external service here, so every test injects the resolver; names under ``.test`` and
``.example.com`` are never looked up for real. Traffic only ever reaches loopback: a test whose
destination is public asserts on the request built for it, through a mock transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import pytest_asyncio
from reliability.conftest import (
    HookMerchant,
    Receiver,
    Reply,
    Request,
    add_endpoint,
    attempts,
    deliveries,
    emit_events,
    make_due,
)

from portal.events.connections import KEEP_CLIENTS, Connections
from portal.events.delivery import deliver_due
from portal.events.destinations import check_destination, check_url, pinned_request

PUBLIC = "93.184.216.34"
"""A global address; no test connects to it."""


class Resolver:
    """An injected resolver: answers each call with the next list of ``answers`` (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


class Captured:
    """A mock transport's handler: keeps each request it is given and answers 200; nothing leaves the process."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, content=b"ok")


@pytest_asyncio.fixture(loop_scope="session")
async def captured() -> AsyncIterator[tuple[Captured, Connections]]:
    handler = Captured()
    connections = Connections(transport=lambda: httpx.MockTransport(handler))
    try:
        yield handler, connections
    finally:
        await connections.aclose()


def strict(hooks: Any) -> Any:
    """``hooks`` with the default policy: private, loopback and link-local destinations refused."""
    return type(hooks)(hooks.platform, msgspec.structs.replace(hooks.settings, webhook_allow_private=False))


def answers(*replies: Reply) -> Any:
    queue = list(replies)

    async def respond(_: Request) -> Reply:
        return queue.pop(0) if queue else (200, {}, b"ok")

    return respond


# --- (a) a name the operating system cannot resolve reaches the receiver at the pinned address --


async def test_a_name_is_resolved_once_per_attempt_and_the_request_goes_to_that_address(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    # ``.test`` names never resolve (RFC 6761): the request arrives only because delivery connects
    # to the address the injected resolver gave, with no lookup of its own.
    resolve = Resolver(["127.0.0.1"])
    receiver.respond = answers((500, {}, b"try again"))
    endpoint = await add_endpoint(merchant, f"http://Hooks.Example.TEST.:{receiver.port}/hook?x=1", receiver.secrets[0])
    await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id, resolve=resolve)
    assert resolve.calls == [("hooks.example.test", receiver.port)]
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "pending" and row["last_status"] == 500
    await make_due(owner, endpoint)
    await deliver_due(hooks, merchant.iso_id, resolve=resolve)
    assert resolve.calls == [("hooks.example.test", receiver.port)] * 2  # once per attempt
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "succeeded" and row["attempts"] == 2
    assert [r.path for r in receiver.requests] == ["/hook?x=1"] * 2
    assert all(r.verified for r in receiver.requests)
    assert {r.headers["host"] for r in receiver.requests} == {f"hooks.example.test:{receiver.port}"}


async def test_the_next_checked_address_is_tried_when_one_refuses_the_connection(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    # The receiver listens on 127.0.0.1 only, so 127.0.0.2 refuses; both were checked, one lookup.
    resolve = Resolver(["127.0.0.2", "127.0.0.1"])
    endpoint = await add_endpoint(merchant, f"http://hooks.example.test:{receiver.port}/hook", receiver.secrets[0])
    await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id, resolve=resolve)
    assert len(resolve.calls) == 1
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "succeeded" and len(receiver.requests) == 1


# --- (b) a rebinding name: the request is built for the address that was checked -------------


async def test_a_rebinding_name_is_sent_to_the_address_that_was_checked(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection, captured
) -> None:
    handler, connections = captured
    rebinding = Resolver([PUBLIC], ["127.0.0.1"])
    endpoint = await add_endpoint(merchant, "https://hooks.example.com/hook", receiver.secrets[0])
    await emit_events(merchant)
    await deliver_due(strict(hooks), merchant.iso_id, resolve=rebinding, connections=connections)
    assert rebinding.calls == [("hooks.example.com", 443)]  # checked once; nothing asked again
    [request] = handler.requests
    assert request.url.scheme == "https" and request.url.host == PUBLIC and request.url.port is None
    assert request.url.raw_path == b"/hook"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.extensions["timeout"]["connect"] == hooks.settings.webhook_timeout
    assert receiver.verify_with(receiver.secrets[0], _as_received(request))
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "succeeded"


def _as_received(request: httpx.Request) -> Request:
    return Request("POST", request.url.raw_path.decode(), dict(request.headers), request.content, False)


def test_the_pinned_request_keeps_the_name_for_host_and_tls() -> None:
    named = check_url("https://Hooks.Example.com.:8443/a%20b?x=1#frag", allow_private=False)
    request = pinned_request(
        named, ipaddress.ip_address("2606:4700:4700::1111"), content=b"{}", headers={"x": "1"}, timeout=2.0
    )
    assert str(request.url) == "https://[2606:4700:4700::1111]:8443/a%20b?x=1"
    assert request.headers["host"] == "hooks.example.com:8443" and request.headers["x"] == "1"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.extensions["timeout"] == httpx.Timeout(2.0).as_dict()
    literal = check_url(f"https://{PUBLIC}/hook", allow_private=False)
    direct = pinned_request(literal, literal.address, content=b"", headers={}, timeout=1.0)
    assert str(direct.url) == f"https://{PUBLIC}/hook" and direct.headers["host"] == PUBLIC
    assert "sni_hostname" not in direct.extensions  # the certificate must then name the address


# --- (c) a name that resolves to a private address is refused before any connection ----------


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        (["10.0.0.5"], "10.0.0.5"),
        ([PUBLIC, "127.0.0.1"], "127.0.0.1"),
        (["2606:4700:4700::1111", "fd00::1"], "fd00::1"),
        (["::ffff:169.254.169.254"], "::ffff:169.254.169.254"),
        (["fe80::1%eth0"], "fe80::1"),
    ],
    ids=["private", "mixed", "unique-local", "mapped-metadata", "link-local-zone"],
)
async def test_a_name_resolving_to_a_private_address_is_refused_without_connecting(
    hooks: Any, merchant: HookMerchant, owner: asyncpg.Connection, captured, answer: list[str], refused: str
) -> None:
    handler, connections = captured
    resolve = Resolver(answer)
    endpoint = await add_endpoint(merchant, "https://hooks.example.com/hook", "whsec_" + "A" * 32)
    await emit_events(merchant)
    began = datetime.now(UTC)
    await deliver_due(strict(hooks), merchant.iso_id, resolve=resolve, connections=connections)
    assert len(resolve.calls) == 1 and handler.requests == []
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_status"] is None
    assert row["next_attempt_at"] >= began + timedelta(seconds=4)  # a failed attempt, per the schedule
    assert row["last_error"].startswith("destination refused: hooks.example.com resolves to a private address (")
    assert f"({ipaddress.ip_address(refused)} is " in row["last_error"]
    [attempt] = await attempts(owner, row["id"])
    assert attempt["status_code"] is None and attempt["error"] == row["last_error"]
    assert len(connections) == 0  # no client was even made for the name


async def test_a_resolver_failure_is_a_failed_attempt(
    hooks: Any, merchant: HookMerchant, owner: asyncpg.Connection, captured
) -> None:
    handler, connections = captured

    async def broken(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    endpoint = await add_endpoint(merchant, "https://hooks.example.com/hook", "whsec_" + "A" * 32)
    await emit_events(merchant)
    await deliver_due(strict(hooks), merchant.iso_id, resolve=broken, connections=connections)
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "pending" and handler.requests == []
    assert (
        row["last_error"]
        == "destination refused: cannot resolve hooks.example.com ([Errno -2] Name or service not known)"
    )


async def test_check_destination_resolves_once_and_refuses_any_private_answer() -> None:
    resolve = Resolver([PUBLIC, "2606:4700:4700::1111", PUBLIC])
    assert await check_destination("https://hooks.example.com/x", resolve=resolve) == [
        ipaddress.ip_address(PUBLIC),
        ipaddress.ip_address("2606:4700:4700::1111"),
    ]
    literal = Resolver([PUBLIC])
    assert await check_destination(f"https://{PUBLIC}/x", resolve=literal) == [ipaddress.ip_address(PUBLIC)]
    assert literal.calls == []  # a literal is not looked up
    lenient = Resolver(["127.0.0.1", "10.0.0.1"])
    assert len(await check_destination("http://hooks.example.test/", allow_private=True, resolve=lenient)) == 2


# --- TLS: the certificate is checked against the name, not the address ------------------------


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


@contextlib.asynccontextmanager
async def tls_receiver(key: Path, cert: Path) -> AsyncIterator[tuple[int, list[str | None], list[bytes]]]:
    """An HTTPS server on 127.0.0.1 that records the TLS server name and the request head it gets."""
    names: list[str | None] = []
    heads: list[bytes] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            heads.append(head)
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], names, heads
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)


async def test_tls_uses_the_name_for_sni_and_certificate_verification(
    hooks: Any, merchant: HookMerchant, owner: asyncpg.Connection, tmp_path: Path
) -> None:
    key, cert = _certificate(tmp_path, "hooks.example.test")
    trusted = ssl.create_default_context(cafile=str(cert))
    connections = Connections(transport=lambda: httpx.AsyncHTTPTransport(verify=trusted))
    try:
        async with tls_receiver(key, cert) as (port, names, heads):
            good = await add_endpoint(merchant, f"https://hooks.example.test:{port}/hook", "whsec_" + "A" * 32)
            await emit_events(merchant)
            await deliver_due(hooks, merchant.iso_id, resolve=Resolver(["127.0.0.1"]), connections=connections)
            [row] = await deliveries(owner, good)
            # The certificate names only hooks.example.test: verifying against 127.0.0.1 would fail.
            assert row["status"] == "succeeded", row["last_error"]
            assert names == ["hooks.example.test"]
            assert f"host: hooks.example.test:{port}".encode() in heads[0].lower()
            await owner.execute("UPDATE portal_webhook_endpoint SET enabled = false WHERE id = $1", good)

            wrong = await add_endpoint(merchant, f"https://other.example.test:{port}/hook", "whsec_" + "A" * 32)
            await emit_events(merchant)
            await deliver_due(hooks, merchant.iso_id, resolve=Resolver(["127.0.0.1"]), connections=connections)
            [row] = await deliveries(owner, wrong)
            assert row["status"] == "pending" and "certificate verify failed" in row["last_error"]
            assert names[-1] == "other.example.test" and len(heads) == 1
    finally:
        await connections.aclose()


# --- connections are per name -----------------------------------------------------------------


async def test_each_name_has_its_own_connections() -> None:
    made: list[httpx.MockTransport] = []

    def transport() -> httpx.MockTransport:
        made.append(httpx.MockTransport(lambda _: httpx.Response(200)))
        return made[-1]

    connections = Connections(transport=transport)
    try:
        async with connections.client("a.example.com") as a, connections.client("b.example.com") as b:
            assert a is not b  # same address or not, a connection never serves another name
        async with connections.client("a.example.com") as again:
            assert again is a and not a.is_closed
        async with connections.client("busy.example.com") as busy:
            for i in range(KEEP_CLIENTS + 5):
                async with connections.client(f"h{i}.example.com"):
                    pass
            assert len(connections) == KEEP_CLIENTS and not busy.is_closed  # in use: kept
        assert a.is_closed and b.is_closed  # the least recently used idle clients were closed
    finally:
        await connections.aclose()
    assert busy.is_closed and len(connections) == 0
