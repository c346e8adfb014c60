"""Errors the ledger raises: a refused change names its reason in ``code``."""

from __future__ import annotations


class BillingError(Exception):
    """A change the ledger refuses; ``code`` is stable (APIs show it), ``message`` is for people.

    Codes include ``invalid_transition`` (the object's status does not allow it),
    ``invalid_currency``, ``invalid_amount``, ``invalid_interval``, ``inactive_price``,
    ``currency_mismatch``, ``no_change``, ``no_payment_method``, ``invoice_not_payable``,
    ``nothing_due``, ``gateway_unavailable``, ``payment_in_progress``, ``clock_not_allowed``
    and ``clock_backwards``.
    """

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message or code


class NotFoundError(BillingError):
    """No such object for this merchant (another merchant's or ISO's id reads as missing)."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__("not_found", f"no such {kind}: {object_id}")
        self.kind = kind
        self.object_id = object_id
