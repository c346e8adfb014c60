"""The Litestar application factory."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import InternalServerException, NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.static_files import create_static_files_router

from portal.access.csrf import csrf_guard
from portal.access.routes import ACCESS_ROUTES
from portal.api.openapi import document_problems
from portal.api.router import OPENAPI_CONFIG, api_router
from portal.mail.pages import DEMO_MAIL_ROUTES
from portal.payments.sandbox import SANDBOX_ROUTES
from portal.platform import Platform
from portal.tenancy.models import Tenant
from portal.web.errors import EXCEPTION_HANDLERS, handle_http_exception
from portal.web.headers import ALLOW_KEY, add_security_headers, allowed_methods, correct_allow_header
from portal.web.input_policy import InputPolicyMiddleware
from portal.web.language import LANGUAGE_ROUTES
from portal.web.middleware import TenantMiddleware
from portal.web.observability import REQUEST_METRICS, metrics
from portal.web.page_prep import BeforePageMiddleware
from portal.web.pages import CORE_ROUTES
from portal.web.request_ids import install_request_ids
from portal.web.state import TENANT_KEY
from portal.web.tracing import tracing_plugins

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


def plugin_guard(key: str) -> Any:
    """A guard that makes a plugin's routes 404 wherever the plugin is off."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        tenant = connection.scope.get(TENANT_KEY)
        if not isinstance(tenant, Tenant) or key not in tenant.enabled_plugins:
            raise NotFoundException()

    guard.__name__ = f"plugin_enabled_{key}"
    return guard


def no_such_file(request: Request[Any, Any, Any], exc: InternalServerException) -> Response[Any]:
    """A static path the file system cannot even look up (a name too long, say) is simply not there."""
    if isinstance(exc.__cause__, OSError) and exc.__cause__.errno in (errno.ENAMETOOLONG, errno.ENOTDIR):
        return handle_http_exception(request, NotFoundException())
    return handle_http_exception(request, exc)


def _static_routers(platform: Platform) -> list[Router]:
    folders = [
        (f"/static/themes/{key}", spec.static, f"static-theme-{key}") for key, spec in platform.themes.themes.items()
    ]
    folders += [
        (f"/static/plugins/{key}", info.static, f"static-plugin-{key}")
        for key, info in platform.registry.plugins.items()
    ]
    return [
        create_static_files_router(
            path=path, directories=[folder], name=name, exception_handlers={InternalServerException: no_such_file}
        )
        for path, folder, name in folders
        if folder is not None
    ]


def create_app(
    platform: Platform, *, manage_platform: bool = True, span_exporter: SpanExporter | None = None
) -> Litestar:
    """Build the web app for a platform.

    With ``manage_platform`` the app's lifespan starts and stops the platform; otherwise the
    caller does (the demo shares one platform between server and worker). ``span_exporter``
    replaces the OTLP exporter when tracing is on (``otel_enabled``).
    """

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if not manage_platform:
            yield
            return
        await platform.start()
        try:
            yield
        finally:
            await platform.stop()

    plugin_routers = [
        Router(
            path="/",
            route_handlers=list(routes.handlers),
            guards=[plugin_guard(key)],
            tags=[key],
            include_in_schema=False,
        )
        for key, routes in platform.registry.routes.items()
    ]
    demo_routes = DEMO_MAIL_ROUTES if platform.settings.demo else []
    state: dict[str, Any] = {"platform": platform}
    if platform.mail_catcher is not None:
        state["mail_catcher"] = platform.mail_catcher
    app = Litestar(
        route_handlers=[
            *_static_routers(platform),
            *plugin_routers,
            api_router(platform.registry),
            *ACCESS_ROUTES,
            *LANGUAGE_ROUTES,
            *demo_routes,
            *SANDBOX_ROUTES,
            metrics,
            *CORE_ROUTES,
        ],
        middleware=[REQUEST_METRICS.middleware, TenantMiddleware(), InputPolicyMiddleware(), BeforePageMiddleware()],
        plugins=tracing_plugins(platform.settings, span_exporter),
        guards=[csrf_guard],
        openapi_config=OPENAPI_CONFIG,
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[add_security_headers, correct_allow_header],
        lifespan=[lifespan],
        state=State(state),
        debug=False,
        logging_config=None,  # the process's logging (portal.logs) stays as configured
    )
    document_problems(app)
    app.state[ALLOW_KEY] = allowed_methods(app)
    install_request_ids(app)
    return app
