"""Prometheus metrics on the web port: behind the token, by route template, pool and email counters.

The default registry is shared by every test of the process, so tests compare values before
and after what they do, never absolute counts.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import msgspec
import pytest
import pytest_asyncio
from litestar import Litestar
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from portal.db.engine import ENGINE
from portal.mail import Mailer, MailError, compose
from portal.platform import Platform
from portal.web.app import create_app
from portal.web.observability import MULTIPROCESS_ENV
from support.browser import PlatformView

TOKEN = "scrape-secret-0123456789"
GREENFIELD = "t-greenfield.portal.localhost"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def requests(found: Samples, path: str, status: str, method: str = "GET") -> float:
    labels = {"method": method, "path": path, "status_code": status, "app_name": "portal"}
    return value(found, "portal_http_requests_total", **labels)


@pytest.fixture(scope="module")
def metrics_app(portal_platform: Platform) -> Litestar:
    """The web app of the test platform with ``metrics_token`` set."""
    settings = msgspec.structs.replace(portal_platform.settings, metrics_token=TOKEN)
    return create_app(PlatformView(portal_platform, settings), manage_platform=False)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def client(metrics_app: Litestar) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []
    transport = httpx.ASGITransport(app=metrics_app)  # type: ignore[arg-type]

    def make(host: str = GREENFIELD) -> httpx.AsyncClient:
        clients.append(httpx.AsyncClient(transport=transport, base_url=f"https://{host}"))
        return clients[-1]

    yield make
    for made in clients:
        await made.aclose()


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/-/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return samples(response.text)


async def test_without_a_token_setting_metrics_are_not_on_the_web_port(shared_tenants: Platform, portal_client) -> None:
    for host in (GREENFIELD, "nobody.portal.localhost"):
        response = await portal_client(host).get("/-/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404, host
        assert "portal_http_requests_total" not in response.text


async def test_the_token_opens_metrics_and_nothing_else_does(client) -> None:
    web = client("anything.example.test")  # tenant-free: any host
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": ""}):
        refused = await web.get("/-/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "portal_" not in refused.text
    answer = await web.get("/-/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-request-id"]
    assert "# TYPE portal_http_requests_total counter" in answer.text


def test_metrics_are_not_in_the_openapi_document(metrics_app: Litestar) -> None:
    assert metrics_app.openapi_schema.paths is not None
    assert not [path for path in metrics_app.openapi_schema.paths if path.startswith("/-/")]


async def test_requests_are_counted_by_route_template_never_by_raw_path(shared_tenants: Platform, client) -> None:
    web = client()
    token = "pt1.lk_01abcdefghjkmnpqrstvwxyz01.eyJpc28iOiJ4In0.c2lnbmF0dXJl"
    before = await scrape(web)
    for _ in range(2):
        assert (await web.get("/-/health")).status_code == 200
    landed = await web.get(f"/access/{token}")
    after = await scrape(web)
    assert requests(after, "/-/health", "200") - requests(before, "/-/health", "200") == 2
    status = str(landed.status_code)
    assert requests(after, "/access/{token}", status) - requests(before, "/access/{token}", status) == 1
    refused = "portal_access_links_refused_total"
    assert value(after, refused, reason="invalid") - value(before, refused, reason="invalid") == 1
    assert value(after, "portal_http_request_duration_seconds_count", method="GET", path="/-/health",
                 status_code="200", app_name="portal") >= 2  # fmt: skip
    paths = {dict(labels).get("path", "") for _, labels in after}
    assert not [path for path in paths if "pt1." in path or "lk_" in path], paths


async def test_errors_raised_before_the_handler_are_counted_with_their_status(shared_tenants: Platform, client) -> None:
    before = await scrape(client())
    unknown = await client("nobody.portal.localhost").get("/some/page")
    assert unknown.status_code == 404
    after = await scrape(client())
    assert requests(after, "/{path}", "404") - requests(before, "/{path}", "404") == 1


async def test_the_pool_gauges_are_read_at_scrape_time(portal_platform: Platform, client) -> None:
    found = await scrape(client())
    size = value(found, "portal_db_pool_size")
    assert value(found, "portal_db_pool_max_size") == portal_platform.settings.db_pool_max
    assert 1 <= size <= portal_platform.settings.db_pool_max
    assert value(found, "portal_db_pool_idle") + value(found, "portal_db_pool_in_use") == size
    pool = ENGINE.pool
    assert pool is not None
    async with pool.acquire():
        held = await scrape(client())
    assert value(held, "portal_db_pool_in_use") >= 1


async def test_emails_are_counted_by_outcome(shared_tenants: Platform, client) -> None:
    tenant = await shared_tenants.tenants.resolve(GREENFIELD)
    assert tenant is not None
    message = compose(
        merchant=tenant.merchant,
        to="jane@globalco.com",
        subject="Your sign-in link",
        text="Open https://t-greenfield.portal.localhost/access/…",
        html="<p>Open the link.</p>",
        mail_from=shared_tenants.settings.mail_from,
    )
    before = await scrape(client())
    await Mailer(shared_tenants.settings).send(message)
    closed = msgspec.structs.replace(shared_tenants.settings, smtp_port=_closed_port(), smtp_timeout=2.0)
    with pytest.raises(MailError):
        await Mailer(closed).send(message)
    after = await scrape(client())
    assert (
        value(after, "portal_emails_total", outcome="sent") - value(before, "portal_emails_total", outcome="sent") == 1
    )
    assert (
        value(after, "portal_emails_total", outcome="failed") - value(before, "portal_emails_total", outcome="failed")
        == 1
    )


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_multiprocess_mode_collects_every_process(
    client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    other = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", "from portal.metrics import EMAILS; EMAILS.labels(outcome='sent').inc(3)"],
        env={**_env(), MULTIPROCESS_ENV: str(folder)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 0, other.stderr
    monkeypatch.setenv(MULTIPROCESS_ENV, str(folder))
    found = await scrape(client())
    assert value(found, "portal_emails_total", outcome="sent") == 3  # only what the other process wrote


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_") and k != MULTIPROCESS_ENV}
