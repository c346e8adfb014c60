"""The sandbox payment gateway: NMI's behaviour (response codes, Collect.js) inside the portal.

The default gateway of the demo and the tests. Card fields live in frames the sandbox serves;
tokenizing keeps only the brand, last four digits and expiry, never the number or the code.
It accepts test card numbers only (see ``docs/payments.md``); they choose approvals, declines
and processor errors.
"""

from __future__ import annotations

from portal.payments.sandbox.adapter import SandboxAdapter, create_adapter
from portal.payments.sandbox.routes import SANDBOX_ROUTES
from portal.payments.sandbox.settings import GATEWAY_KEY, SandboxSettings
from portal.plugin import PaymentGateway

SANDBOX_GATEWAY = PaymentGateway(
    key=GATEWAY_KEY, title="Sandbox (test cards)", factory=create_adapter, settings=SandboxSettings
)

__all__ = ["SANDBOX_GATEWAY", "SANDBOX_ROUTES", "SandboxAdapter", "SandboxSettings"]
