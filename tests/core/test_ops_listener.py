"""The operator listener: a real socket in this event loop, health, readiness and metrics."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from portal.config import Settings
from portal.metrics import EMAILS
from portal.ops import OpsListener, OpsListenerError, start_ops_listener

Start = Callable[..., Awaitable[OpsListener]]


class Probe:
    """What the listener asks of its process, and how often it asked."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.scrapes = 0
        self.fail_scrape = False

    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "component": "probe"}

    async def ready(self) -> list[str]:
        return list(self.problems)

    async def before_scrape(self) -> None:
        self.scrapes += 1
        if self.fail_scrape:
            raise RuntimeError("the queue table is gone")


@pytest_asyncio.fixture(loop_scope="session")
async def start() -> AsyncIterator[Start]:
    """Start listeners on loopback; every one is stopped afterwards."""
    started: list[OpsListener] = []

    async def make(probe: Probe, *, port: int = 0, **settings: Any) -> OpsListener:
        listener = await start_ops_listener(
            Settings(ops_host="127.0.0.1", **settings),
            port=port,
            health=probe.health,
            ready=probe.ready,
            before_scrape=probe.before_scrape,
        )
        started.append(listener)
        return listener

    yield make
    for listener in started:
        await listener.stop()


def url(listener: OpsListener, path: str) -> str:
    return f"http://127.0.0.1:{listener.port}{path}"


async def test_health_and_readiness(start: Start) -> None:
    probe = Probe()
    listener = await start(probe)
    assert listener.port > 0
    async with httpx.AsyncClient(timeout=5) as client:
        health = await client.get(url(listener, "/-/health"))
        assert health.status_code == 200 and health.json() == {"status": "ok", "component": "probe"}
        assert health.headers["cache-control"] == "no-store"
        ready = await client.get(url(listener, "/-/ready"))
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        probe.problems = ["database: unreachable (ConnectionRefusedError)", "broker: not connected"]
        unready = await client.get(url(listener, "/-/ready"))
        assert unready.status_code == 503
        assert unready.json() == {"status": "unavailable", "problems": probe.problems}
        assert unready.headers["cache-control"] == "no-store"
        assert (await client.get(url(listener, "/elsewhere"))).status_code == 404


async def test_metrics_refresh_before_each_scrape_and_survive_a_failing_refresh(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe()
    listener = await start(probe)
    EMAILS.labels(outcome="sent").inc(0)  # the series exists whatever ran before
    async with httpx.AsyncClient(timeout=5) as client:
        scraped = await client.get(url(listener, "/-/metrics"))
        assert scraped.status_code == 200 and probe.scrapes == 1
        assert scraped.headers["cache-control"] == "no-store"
        names = {family.name for family in text_string_to_metric_families(scraped.text)}
        assert {"portal_emails", "portal_db_pool_size", "portal_db_pool_in_use"} <= names
        probe.fail_scrape = True
        with caplog.at_level("ERROR", logger="portal.ops"):
            still = await client.get(url(listener, "/-/metrics"))
        assert still.status_code == 200 and "portal_emails_total" in still.text
        assert probe.scrapes == 2
        assert "refreshing metrics before a scrape failed" in caplog.text


async def test_a_metrics_token_is_asked_for_here_too(start: Start) -> None:
    listener = await start(Probe(), metrics_token="ops-secret")
    async with httpx.AsyncClient(timeout=5) as client:
        refused = await client.get(url(listener, "/-/metrics"))
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        opened = await client.get(url(listener, "/-/metrics"), headers={"Authorization": "Bearer ops-secret"})
        assert opened.status_code == 200
        assert (await client.get(url(listener, "/-/health"))).status_code == 200  # only metrics need it


async def test_a_taken_port_is_a_clear_error(start: Start) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OpsListenerError, match=rf"cannot listen on 127\.0\.0\.1:{port}: the port is in use"):
            await start(Probe(), port=port)


async def test_stopping_closes_the_port(start: Start) -> None:
    listener = await start(Probe())
    await listener.stop()
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url(listener, "/-/health"))
    again = await start(Probe(), port=listener.port)  # the port is free again
    assert again.port == listener.port
