"""Optional OpenTelemetry tracing: spans named by route template, tokens kept out, off by default."""

from __future__ import annotations

import subprocess
import sys

import httpx
import msgspec
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from portal.config import ConfigError, Settings
from portal.platform import Platform
from portal.web.app import create_app
from portal.web.tracing import tracing_plugins
from support.browser import PlatformView

GREENFIELD = "t-greenfield.portal.localhost"
TOKEN = "pt1.lk_01abcdefghjkmnpqrstvwxyz01.eyJpc28iOiJ0cmFjZSJ9.c2lnbmF0dXJlLXRyYWNl"


async def test_a_request_s_span_is_named_after_its_route(shared_tenants: Platform) -> None:
    exporter = InMemorySpanExporter()
    settings = msgspec.structs.replace(shared_tenants.settings, otel_enabled=True)
    app = create_app(PlatformView(shared_tenants, settings), manage_platform=False, span_exporter=exporter)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"https://{GREENFIELD}") as client:  # type: ignore[arg-type]
        landed = await client.get(f"/access/{TOKEN}")
        health = await client.get("/-/health")
    assert landed.status_code < 500 and health.status_code == 200
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"GET /access/{token}", "GET /-/health"}, list(spans)
    access = spans["GET /access/{token}"]
    assert access.attributes is not None
    assert access.attributes["http.route"] == "/access/{token}"
    assert access.resource.attributes["service.name"] == "portal"
    text = repr(dict(access.attributes))
    assert "pt1." not in text and "c2lnbmF0dXJl" not in text, text
    assert "/access/…" in text  # the path is kept, its token redacted


def test_tracing_is_off_by_default_and_imports_nothing() -> None:
    assert tracing_plugins(Settings()) == []
    probe = "import sys, portal.web.app; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_without_the_packages_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if opentelemetry-sdk were not installed
    with pytest.raises(ConfigError, match=r"PORTAL_OTEL_ENABLED: .* install portal-core\[otel\]"):
        tracing_plugins(Settings(otel_enabled=True))


def test_the_service_name_follows_otel_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "portal-eu")
    exporter = InMemorySpanExporter()
    plugin = tracing_plugins(Settings(otel_enabled=True), exporter)[0]
    provider = plugin.config.tracer_provider  # type: ignore[attr-defined]
    assert provider.resource.attributes["service.name"] == "portal-eu"
