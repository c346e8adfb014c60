"""``/api/v1/customers/{id}/payment-methods``: a customer's cards on file (read only)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from portal.api.auth import require
from portal.api.billing.common import BillingController, tenant_of_customer
from portal.api.billing.schemas import Card, PaymentMethod, PaymentMethodList
from portal.api.keys import ApiPrincipal
from portal.payments import methods
from portal.payments.methods import PaymentMethodNotFoundError


def to_payment_method(method: methods.PaymentMethod) -> PaymentMethod:
    """A card on file as the API shows it (never the gateway's vault references)."""
    return PaymentMethod(
        id=method.id,
        customer=method.customer_id,
        type="card",
        card=Card(brand=method.brand, last4=method.last4, exp_month=method.exp_month, exp_year=method.exp_year),
        gateway=method.gateway,
        default=method.is_default,
        created=method.created_at,
    )


class PaymentMethodController(BillingController):
    """The cards a customer has on file."""

    path = "/customers/{customer_id:str}/payment-methods"
    tags = ["billing"]

    @get("/", summary="List a customer's payment methods")
    async def list_methods(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], customer_id: FromPath[str]
    ) -> PaymentMethodList:
        """The customer's cards on file, default first, then newest first."""
        require(principal, "billing:read")
        tenant = await tenant_of_customer(request, principal, customer_id)
        found = await methods.list_methods(tenant.merchant.iso_id, tenant.merchant.id, customer_id)
        return PaymentMethodList(data=[to_payment_method(method) for method in found], has_more=False)

    @get("/{payment_method_id:str}", summary="Retrieve a customer's payment method")
    async def retrieve(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        customer_id: FromPath[str],
        payment_method_id: FromPath[str],
    ) -> PaymentMethod:
        """One card on file; 404 for a card the customer does not have (or no longer has)."""
        require(principal, "billing:read")
        tenant = await tenant_of_customer(request, principal, customer_id)
        found = await methods.list_methods(tenant.merchant.iso_id, tenant.merchant.id, customer_id)
        for method in found:
            if method.id == payment_method_id:
                return to_payment_method(method)
        raise PaymentMethodNotFoundError(payment_method_id)
