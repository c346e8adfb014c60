"""The ``/api/v1`` router and the OpenAPI document at ``/api/docs``."""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from portal import __version__
from portal.api.audit import AuditEventController
from portal.api.auth import PLUGIN_OPTION, api_principal
from portal.api.billing import BILLING_CONTROLLERS
from portal.api.billing_details import BillingDetailsController
from portal.api.customers import CustomerController
from portal.api.idempotency import IdempotencyMiddleware
from portal.api.sessions import PortalLinkController, PortalSessionController
from portal.api.webhooks import WebhookDeliveryController, WebhookEndpointController
from portal.plugins.registry import PluginRegistry
from portal.tenancy.models import Tenant
from portal.web.state import TENANT_KEY

OPENAPI_CONFIG = OpenAPIConfig(
    title="Customer portal API",
    version=__version__,
    path="/api/docs",
    render_plugins=[JsonRenderPlugin(path="/openapi.json"), YamlRenderPlugin(path="/openapi.yaml")],
    components=Components(
        security_schemes={"apiKey": SecurityScheme(type="http", scheme="bearer", description="sk_ or isk_ key")}
    ),
    security=[{"apiKey": []}],
)


def host_plugin_guard(key: str) -> Any:
    """On a merchant host, a plugin's API routes are 404 where the plugin is off (the API host decides per call)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        tenant = connection.scope.get(TENANT_KEY)
        if isinstance(tenant, Tenant) and key not in tenant.enabled_plugins:
            raise NotFoundException()

    guard.__name__ = f"api_plugin_enabled_{key}"
    return guard


def api_router(registry: PluginRegistry | None = None) -> Router:
    """Everything under ``/api/v1``, plugins' API routes included.

    API keys authenticate, so forms' CSRF checks do not apply.
    """
    plugin_routers = [
        Router(
            path="/",
            route_handlers=list(routes.handlers),
            guards=[host_plugin_guard(key)],
            opt={PLUGIN_OPTION: key},
            tags=[key],
        )
        for key, routes in (registry.api_routes if registry is not None else {}).items()
    ]
    return Router(
        path="/api/v1",
        route_handlers=[
            CustomerController,
            BillingDetailsController,
            PortalSessionController,
            PortalLinkController,
            WebhookEndpointController,
            WebhookDeliveryController,
            AuditEventController,
            *BILLING_CONTROLLERS,
            *plugin_routers,
        ],
        dependencies={"principal": Provide(api_principal)},
        middleware=[IdempotencyMiddleware()],
        opt={"csrf_exempt": True},
        tags=["api"],
    )
