"""Request ids and JSON logs: every answer names its request, every record made for it carries the id."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import socket
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
import uvicorn
from litestar import Litestar

from portal.logs import JsonFormatter, SafeFormatter, configure_logging, request_context, set_merchant
from portal.platform import Platform

GREENFIELD = "t-greenfield.portal.localhost"
TOKEN = "pt1.lk_01abcdefghjkmnpqrstvwxyz01.eyJpc28iOiJzZWNyZXQifQ.c2lnbmF0dXJlLXNlY3JldA"
GENERATED = re.compile(r"^req_[0-9a-z]{26}$")


@contextlib.contextmanager
def json_lines(*loggers: str) -> Iterator[io.StringIO]:
    """Records of ``loggers`` (at INFO) written through :class:`JsonFormatter` into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield stream
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class _Server(uvicorn.Server):
    """uvicorn in the test's loop, without its signal handlers; :attr:`up` is set once it accepts."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.up.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@pytest_asyncio.fixture(loop_scope="session")
async def served(portal_app: Litestar, shared_tenants: Platform) -> AsyncIterator[int]:
    """The test app behind a real uvicorn (its access log included) on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(portal_app, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await asyncio.wait_for(server.up.wait(), 10)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_a_request_s_json_lines_carry_its_id_and_merchant_never_its_token(served: int) -> None:
    with json_lines("uvicorn.access", "portal") as stream:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(
                f"http://127.0.0.1:{served}/access/{TOKEN}", headers={"Host": GREENFIELD, "X-Request-ID": "lb.4711-a_b"}
            )
    assert response.headers["x-request-id"] == "lb.4711-a_b"
    text = stream.getvalue()
    assert "pt1." not in text and "c2lnbmF0dXJl" not in text and "eyJpc28i" not in text, text
    lines = parsed(stream)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert len(access) == 1, lines
    assert access[0]["request_id"] == "lb.4711-a_b"
    assert "GET /access/… HTTP/1.1" in access[0]["message"]
    assert access[0]["merchant"] == "t-greenfield"
    refused = [line for line in lines if line["message"].startswith("link refused")]
    assert refused and refused[0]["request_id"] == "lb.4711-a_b" and refused[0]["merchant"] == "t-greenfield"
    assert set(access[0]) == {"time", "level", "logger", "message", "request_id", "merchant"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", access[0]["time"])
    assert access[0]["level"] == "INFO"


async def test_request_ids_are_echoed_on_every_answer(shared_tenants: Platform, portal_client) -> None:
    shop = portal_client(GREENFIELD)
    given = await shop.get("/-/health", headers={"X-Request-ID": "A.b-C_9" * 9 + "z"})
    assert given.headers["x-request-id"] == "A.b-C_9" * 9 + "z"  # 64 characters: the longest kept
    for bad in ("a" * 65, "has space", "semi;colon", "slash/", 'quote"', ""):
        answer = await shop.get("/-/health", headers={"X-Request-ID": bad})
        assert GENERATED.match(answer.headers["x-request-id"]), bad
    unknown_host = await portal_client("nobody.portal.localhost").get("/", headers={"X-Request-ID": "r-404"})
    assert unknown_host.status_code == 404 and unknown_host.headers["x-request-id"] == "r-404"
    not_allowed = await shop.delete("/-/health", headers={"X-Request-ID": "r-405"})  # refused by the router
    assert not_allowed.status_code == 405 and not_allowed.headers["x-request-id"] == "r-405"
    failing = await shop.get("/example/fail/boom", headers={"X-Request-ID": "r-500"})
    assert failing.status_code == 500 and failing.headers["x-request-id"] == "r-500"
    fresh = {(await shop.get("/-/health")).headers["x-request-id"] for _ in range(3)}
    assert len(fresh) == 3 and all(GENERATED.match(value) for value in fresh)


async def test_the_error_log_of_a_failing_request_carries_its_id(shared_tenants: Platform, portal_client) -> None:
    with json_lines("portal.web.errors") as stream:
        await portal_client(GREENFIELD).get("/example/fail/boom", headers={"X-Request-ID": "fail-1"})
    [line] = parsed(stream)
    assert line["request_id"] == "fail-1" and line["merchant"] == "t-greenfield" and line["level"] == "ERROR"
    assert line["message"] == "unhandled error on GET /example/fail/boom"
    assert line["exc"].startswith("Traceback") and "RuntimeError: example failure for boom" in line["exc"]


def test_the_json_formatter_escapes_and_redacts() -> None:
    record = logging.LogRecord(
        "portal.test", logging.WARNING, __file__, 1, "odd %s", (f"a\r\nb\u2028c /access/{TOKEN}",), None
    )
    try:
        raise ValueError(f"bad\x85value /access/{TOKEN}")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\u2028" not in line and "\x85" not in line
    entry = json.loads(line)
    assert entry["message"] == "odd a\\r\\nb\\u2028c /access/…"
    assert "request_id" not in entry and "merchant" not in entry  # made outside any request
    assert "ValueError: bad\\x85value /access/…" in entry["exc"]
    with request_context("job-7"):
        set_merchant("t-apex")
        inside = json.loads(JsonFormatter().format(logging.LogRecord("x", logging.INFO, "", 1, "m", None, None)))
    assert inside["request_id"] == "job-7" and inside["merchant"] == "t-apex"


@pytest.mark.parametrize(("fmt", "formatter"), [("json", JsonFormatter), ("text", SafeFormatter)])
def test_configure_logging_chooses_the_format(fmt: str, formatter: type[logging.Formatter]) -> None:
    root = logging.getLogger()
    saved = [(handler, handler.formatter) for handler in root.handlers]
    level = root.level
    try:
        configure_logging("info", fmt=fmt)  # type: ignore[arg-type]
        assert root.handlers and all(isinstance(handler.formatter, formatter) for handler in root.handlers)
    finally:
        for handler, previous in saved:
            handler.setFormatter(previous)
        root.setLevel(level)
