"""Typed access to what the middleware puts on each request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException

from portal.tenancy.models import CustomerView, Tenant
from portal.web.sessions import SessionView

if TYPE_CHECKING:
    from portal.platform import Platform

TENANT_KEY = "portal_tenant"
CUSTOMER_KEY = "portal_customer"
NONCE_KEY = "portal_csp_nonce"
SESSION_KEY = "portal_session"
CSRF_SEED_KEY = "portal_csrf_seed"
CSRF_NEW_KEY = "portal_csrf_new"
REQUEST_ID_KEY = "portal_request_id"
LOCALE_KEY = "portal_locale"
"""The request's locale (``es``, ``en_US``): see ``portal.i18n.choose_locale``."""
LANGUAGE_COOKIE = "portal_language"
"""The language a visitor chose with the footer's switch, until a link names one."""


def platform_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Platform:
    """The platform serving this app."""
    platform: Platform = connection.app.state.platform
    return platform


def tenant_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Tenant:
    """The merchant tenant of this request; 404 on hosts that are not a merchant's."""
    tenant = connection.scope.get(TENANT_KEY)
    if tenant is None:
        raise NotFoundException()
    assert isinstance(tenant, Tenant)
    return tenant


def customer_of(connection: ASGIConnection[Any, Any, Any, Any]) -> CustomerView:
    """The signed-in customer; 401 when there is none."""
    customer = connection.scope.get(CUSTOMER_KEY)
    if customer is None:
        raise NotAuthorizedException(detail="Open the link the merchant sent you to reach your account.")
    assert isinstance(customer, CustomerView)
    return customer


def optional_customer(connection: ASGIConnection[Any, Any, Any, Any]) -> CustomerView | None:
    """The signed-in customer, or ``None``."""
    customer = connection.scope.get(CUSTOMER_KEY)
    return customer if isinstance(customer, CustomerView) else None


def session_of(connection: ASGIConnection[Any, Any, Any, Any]) -> SessionView | None:
    """The live session of this request, or ``None``."""
    session = connection.scope.get(SESSION_KEY)
    return session if isinstance(session, SessionView) else None


def request_id_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The request id (the client's ``X-Request-Id`` when well-formed, else a fresh ``req_`` id)."""
    return str(connection.scope.get(REQUEST_ID_KEY, ""))


def csp_nonce_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The Content-Security-Policy nonce of this response."""
    return str(connection.scope.get(NONCE_KEY, ""))
