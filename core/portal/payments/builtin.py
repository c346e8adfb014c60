"""Core's built-in payment gateways (NMI and the sandbox), which the plugin registry adds to plugins' own."""

from __future__ import annotations

from portal.payments.nmi import NMI_GATEWAY
from portal.payments.sandbox import SANDBOX_GATEWAY
from portal.plugin import PaymentGateway

BUILTIN_GATEWAYS: tuple[PaymentGateway, ...] = (SANDBOX_GATEWAY, NMI_GATEWAY)
"""The gateways every installation offers merchants."""
