"""Core's built-in payment gateways (NMI and the sandbox), registered like a plugin's."""

from __future__ import annotations

from portal.payments.nmi import NMI_GATEWAY
from portal.payments.sandbox import SANDBOX_GATEWAY
from portal.plugin import PaymentGateway, hookimpl


@hookimpl
def portal_payment_gateways() -> list[PaymentGateway]:
    """The gateways every installation offers merchants."""
    return [SANDBOX_GATEWAY, NMI_GATEWAY]
