"""The per-request context handed to per-request hooks."""

from __future__ import annotations

from typing import Any

from litestar import Request

from portal.tenancy.models import CustomerView, MerchantView, Tenant


class PageContext:
    """The merchant, the customer and the request a page is rendered for."""

    __slots__ = ("customer", "request", "tenant")

    def __init__(self, request: Request[Any, Any, Any], tenant: Tenant, customer: CustomerView | None) -> None:
        self.request = request
        self.tenant = tenant
        self.customer = customer

    @property
    def merchant(self) -> MerchantView:
        """The merchant whose host served the request."""
        return self.tenant.merchant

    @property
    def iso_id(self) -> str:
        """The ISO every query of this request is scoped to."""
        return self.tenant.merchant.iso_id

    def plugin_settings(self, key: str) -> Any:
        """The validated settings of an enabled plugin for this merchant."""
        return self.tenant.plugin_settings[key]
