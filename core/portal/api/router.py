"""The ``/api/v1`` router and the OpenAPI document at ``/api/docs``."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from portal import __version__
from portal.api.audit import AuditEventController
from portal.api.auth import api_principal
from portal.api.customers import CustomerController
from portal.api.sessions import PortalLinkController, PortalSessionController
from portal.api.webhooks import WebhookDeliveryController, WebhookEndpointController

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


def api_router() -> Router:
    """Everything under ``/api/v1``; API keys authenticate, so forms' CSRF checks do not apply."""
    return Router(
        path="/api/v1",
        route_handlers=[
            CustomerController,
            PortalSessionController,
            PortalLinkController,
            WebhookEndpointController,
            WebhookDeliveryController,
            AuditEventController,
        ],
        dependencies={"principal": Provide(api_principal)},
        opt={"csrf_exempt": True},
        tags=["api"],
    )
