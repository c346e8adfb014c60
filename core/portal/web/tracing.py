"""Optional OpenTelemetry tracing of web requests (``otel_enabled``; needs ``portal-core[otel]``).

Spans go to an OTLP/HTTP exporter configured by the standard ``OTEL_EXPORTER_OTLP_*``
variables; the service name is ``portal`` unless ``OTEL_SERVICE_NAME`` says otherwise. A span is
named after the method and route template (``GET /access/{token}``), and link tokens are
redacted from its attributes. With tracing off, nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from litestar.config.app import AppConfig
from litestar.middleware import ASGIMiddleware
from litestar.plugins import InitPlugin
from litestar.types import ASGIApp, Receive, Scope, Send

from portal.access.tokens import redact_tokens
from portal.config import ENV_PREFIX, ConfigError, Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

EXTRA = "portal-core[otel]"
SERVICE_NAME = "portal"


def _initial_name(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The span's name before routing: the method alone (the raw path may hold a token)."""
    return str(scope.get("method", scope["type"])), {}


def _redact_attributes(span: Span, scope: dict[str, Any]) -> None:
    """Write ``/access/…`` for any link token in the request attributes (path, target, URL)."""
    attributes = getattr(span, "attributes", None) or {}
    for key, value in dict(attributes).items():
        if isinstance(value, str) and (redacted := redact_tokens(value)) != value:
            span.set_attribute(key, redacted)


class RouteSpanName(ASGIMiddleware):
    """Once routed, name the request's span after its route template and set ``http.route``."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Rename the current (server) span, then pass the request on."""
        from opentelemetry import trace

        template = scope.get("path_template")
        span = trace.get_current_span()
        if template and span.is_recording():
            span.update_name(f"{scope.get('method', '')} {template}".strip())
            span.set_attribute("http.route", template)
        await next_app(scope, receive, send)


class RouteNamesAndFlush(InitPlugin):
    """Adds :class:`RouteSpanName` to the app, and flushes the tracer provider at shutdown."""

    def __init__(self, shutdown: Callable[[], None]) -> None:
        self.shutdown = shutdown

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Name spans after routes (outermost route middleware, so tenant 404s are named too)."""
        app_config.middleware.insert(0, RouteSpanName())
        app_config.on_shutdown.append(self.shutdown)
        return app_config


def tracing_plugins(settings: Settings, exporter: SpanExporter | None = None) -> list[InitPlugin]:
    """The plugins that trace requests; none when tracing is off.

    ``exporter`` replaces the OTLP exporter (tests pass an in-memory one; spans are then
    exported as each ends rather than in batches).
    """
    if not settings.otel_enabled:
        return []
    try:
        from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            f"{ENV_PREFIX}OTEL_ENABLED: tracing needs the OpenTelemetry packages ({exc.name} is missing); "
            f"install {EXTRA}"
        ) from exc

    service = os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    processor = SimpleSpanProcessor(exporter) if exporter is not None else BatchSpanProcessor(OTLPSpanExporter())
    provider.add_span_processor(processor)
    config = OpenTelemetryConfig(
        tracer_provider=provider,
        scope_span_details_extractor=_initial_name,
        server_request_hook_handler=_redact_attributes,
        exclude_spans=["receive", "send"],
    )
    return [OpenTelemetryPlugin(config), RouteNamesAndFlush(provider.shutdown)]
