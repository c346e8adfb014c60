"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
HttpUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$", max_length=2000)]


class CustomerCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Create a customer of a merchant."""

    email: Email
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    external_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    merchant: str | None = None
    """ISO keys only: the merchant's id or slug (merchant keys act on their own merchant)."""


class Customer(msgspec.Struct, kw_only=True):
    """A merchant's customer."""

    id: str
    merchant: str
    email: str
    name: str
    external_ref: str | None
    created: datetime
    object: Literal["customer"] = "customer"


class CustomerList(msgspec.Struct, kw_only=True):
    """Customers matching a lookup."""

    data: list[Customer]
    object: Literal["list"] = "list"


class FlowData(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A task the link opens directly, with the object it is about when the flow needs one."""

    type: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,60}$")]
    subscription: str | None = None
    invoice: str | None = None
    payment_method: str | None = None


class PortalSessionCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Open the portal for a customer."""

    customer: str
    return_url: HttpUrl | None = None
    flow: FlowData | None = None
    locale: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")] | None = None
    expires_in: Annotated[int, msgspec.Meta(ge=60, le=86400)] = 3600
    """Seconds until the link stops working (60 to 86400)."""


class PortalSession(msgspec.Struct, kw_only=True):
    """A single-use portal link for one customer."""

    id: str
    url: str
    expires_at: datetime
    customer: str
    return_url: str | None
    flow: str | None
    locale: str | None
    object: Literal["portal_session"] = "portal_session"


class PortalLinkRevoked(msgspec.Struct, kw_only=True):
    """A revoked link."""

    id: str
    revoked_at: datetime
    object: Literal["portal_link"] = "portal_link"
