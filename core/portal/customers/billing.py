"""A customer's billing details: the name, postal address and tax id invoices show.

Kept in ``portal_customer_billing`` (one row per customer, absent until first written), read
and written in the merchant's tenant transaction. Writes are validated per country and emit
``customer.updated`` with the changed fields before and after, so they are audited and sent
to the merchant's webhooks.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import msgspec

from portal.billing.errors import NotFoundError
from portal.customers.validation import countries, normalize_postal_code, postal_code_problem, tax_id_problem
from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import Actor, emit
from portal.events.core_types import CustomerPayload
from portal.plugins.registry import PluginRegistry
from portal.tenancy.models import Tenant

FIELDS = ("name", "line1", "line2", "city", "postal_code", "state", "country", "tax_id")
MAX_LENGTHS = {
    "name": 200,
    "line1": 200,
    "line2": 200,
    "city": 100,
    "postal_code": 20,
    "state": 100,
    "country": 100,
    "tax_id": 40,
}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ADDRESS = ("line1", "line2", "city", "postal_code", "state")


class BillingDetails(msgspec.Struct, frozen=True, kw_only=True):
    """A customer's billing name, address and tax id; ``None`` where not given.

    ``country`` is an ISO 3166-1 alpha-2 code; an address needs one, and for an EU country a
    tax id must be that country's VAT number (``DE123456789``).
    """

    name: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    state: str | None = None
    country: str | None = None
    tax_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """Field name to value, in :data:`FIELDS` order."""
        return {name: getattr(self, name) for name in FIELDS}


class BillingDetailsError(ValueError):
    """Billing details that are refused; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _text(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BillingDetailsError(field, "is not text")
    if CONTROL.search(value):
        raise BillingDetailsError(field, "must be one line of text")
    value = " ".join(value.split())
    if len(value) > MAX_LENGTHS[field]:
        raise BillingDetailsError(field, f"is longer than {MAX_LENGTHS[field]} characters")
    return value or None


def validate(details: BillingDetails) -> BillingDetails:
    """The details trimmed and normalised (country and postal code upper-cased); else raise.

    Raises :class:`BillingDetailsError` naming the first field that is wrong.
    """
    values = {name: _text(name, getattr(details, name)) for name in FIELDS}
    country = values["country"].upper() if values["country"] else None
    if country is not None and country not in countries():
        raise BillingDetailsError("country", "is not an ISO 3166-1 alpha-2 country code (such as US, GB, DE)")
    values["country"] = country
    if country is None and any(values[name] for name in ADDRESS):
        raise BillingDetailsError("country", "is required with an address")
    if country is not None and not values["line1"] and any(values[name] for name in ADDRESS):
        raise BillingDetailsError("line1", "is required with an address")
    if values["postal_code"] and country is not None:
        values["postal_code"] = normalize_postal_code(country, values["postal_code"])
        problem = postal_code_problem(country, values["postal_code"])
        if problem:
            raise BillingDetailsError("postal_code", problem)
    if values["tax_id"]:
        values["tax_id"], problem = tax_id_problem(country, values["tax_id"])
        if problem:
            raise BillingDetailsError("tax_id", problem)
    return BillingDetails(**values)


def _details(row: dict[str, Any]) -> BillingDetails:
    return BillingDetails(**{name: row[name] for name in FIELDS})


async def get_billing_details(tenant: Tenant, customer_id: str) -> BillingDetails | None:
    """The customer's billing details at the tenant's merchant; ``None`` when none were written."""
    async with tenant_transaction(tenant.merchant.iso_id):
        rows = await fetch(
            f"SELECT {', '.join(FIELDS)} FROM portal_customer_billing WHERE customer_id = $1 AND merchant_id = $2",
            customer_id,
            tenant.merchant.id,
        )
    return _details(rows[0]) if rows else None


async def update_billing_details(
    tenant: Tenant,
    customer_id: str,
    details: BillingDetails,
    *,
    actor: Actor,
    registry: PluginRegistry | None = None,
    only: Collection[str] | None = None,
) -> BillingDetails:
    """Replace the customer's billing details with ``details`` (validated); return what is stored.

    With ``only``, just those fields are taken from ``details`` and the others keep their stored
    values, read under the customer's row lock (two partial updates at once both take effect).

    Runs in (or joins) the merchant's tenant transaction. When anything changed, emits
    ``customer.updated`` with ``before`` and ``after`` holding the changed fields under
    ``billing_details``. Raises :class:`BillingDetailsError` for invalid details and
    :class:`portal.billing.errors.NotFoundError` for a customer of another merchant.
    """
    clean = validate(details) if only is None else None
    merchant = tenant.merchant
    columns = ", ".join(f"b.{name}" for name in FIELDS)
    async with tenant_transaction(merchant.iso_id):
        # The customer's row lock first; the details are read by a statement of their own after it, so
        # they are the latest committed ones (a locking join re-reads only the row it locks).
        locked = await fetch(
            "SELECT id FROM portal_customer WHERE id = $1 AND merchant_id = $2 FOR UPDATE", customer_id, merchant.id
        )
        rows = (
            await fetch(
                f"""
                SELECT c.id, c.merchant_id, c.email, c.name AS customer_name, c.external_ref,
                       b.customer_id AS stored, {columns}
                  FROM portal_customer c LEFT JOIN portal_customer_billing b ON b.customer_id = c.id
                 WHERE c.id = $1 AND c.merchant_id = $2
                """,
                customer_id,
                merchant.id,
            )
            if locked
            else []
        )
        if not rows:
            raise NotFoundError("customer", customer_id)
        row = rows[0]
        before = _details(row).as_dict()
        if clean is None:  # a partial update: the given fields over what is stored
            given = details.as_dict()
            clean = validate(
                BillingDetails(**{name: given[name] if name in (only or ()) else before[name] for name in FIELDS})
            )
        after = clean.as_dict()
        changed = [name for name in FIELDS if before[name] != after[name]]
        if not changed:
            return clean
        await fetch(
            f"""
            INSERT INTO portal_customer_billing (customer_id, iso_id, merchant_id, {", ".join(FIELDS)})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (customer_id) DO UPDATE SET
                {", ".join(f"{name} = EXCLUDED.{name}" for name in FIELDS)}, updated_at = now()
            """,
            customer_id,
            merchant.iso_id,
            merchant.id,
            *(after[name] for name in FIELDS),
        )
        await emit(
            merchant,
            "customer.updated",
            CustomerPayload(
                id=row["id"],
                merchant=row["merchant_id"],
                email=row["email"],
                name=row["customer_name"],
                external_ref=row["external_ref"],
            ),
            actor=actor,
            target=("customer", customer_id),
            customer_id=customer_id,
            before={"billing_details": {name: before[name] for name in changed}},
            after={"billing_details": {name: after[name] for name in changed}},
            enabled_plugins=tenant.enabled_plugins,
            registry=registry,
        )
    return clean
