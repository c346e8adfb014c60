"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from portal.api.params import Rfc3339
from portal.web.input_policy import ONE_LINE

Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$", max_length=254)]
Name = Annotated[str, msgspec.Meta(pattern=ONE_LINE, max_length=200, description="One line of text")]
Reference = Annotated[str, msgspec.Meta(pattern=ONE_LINE, min_length=1, max_length=200, description="One line of text")]
HttpUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$", max_length=2000)]


class CustomerCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Create a customer of a merchant."""

    email: Email
    name: Name = ""
    external_ref: Reference | None = None
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
    other_merchants_count: (
        Annotated[
            int,
            msgspec.Meta(
                ge=0,
                description="Other merchants of the ISO this customer can switch to (same normalised email, "
                "merchant switch on at both); null where the merchant switch is off for this merchant.",
            ),
        ]
        | None
    ) = None
    object: Literal["customer"] = "customer"


class CustomerList(msgspec.Struct, kw_only=True):
    """Customers matching a lookup."""

    data: list[Customer]
    object: Literal["list"] = "list"


class FlowData(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A task the link opens directly, with the id of the object it is about when the flow takes one."""

    type: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,60}$")]
    id: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    """The object the flow is about (``sub_...`` for a flow about a subscription); bound into the token."""


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


class CustomerUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change a customer: give at least one field (``external_ref: null`` clears it)."""

    email: Email | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    external_ref: Reference | msgspec.UnsetType | None = msgspec.UNSET


EventTypeName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]+(?:\.[a-z0-9_]+)+$", max_length=100)]
WebhookUrl = Annotated[str, msgspec.Meta(max_length=2000)]


class WebhookEndpointCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Subscribe a URL to events."""

    url: WebhookUrl
    event_types: Annotated[list[EventTypeName], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    """Event types to send; empty: all."""
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    enabled: bool = True
    merchant: str | None = None
    """ISO keys only: the merchant's id or slug."""


class WebhookEndpointUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change an endpoint: give at least one field."""

    url: WebhookUrl | msgspec.UnsetType = msgspec.UNSET
    event_types: Annotated[list[EventTypeName], msgspec.Meta(max_length=100)] | msgspec.UnsetType = msgspec.UNSET
    description: Annotated[str, msgspec.Meta(max_length=500)] | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class WebhookEndpoint(msgspec.Struct, kw_only=True):
    """Where a merchant receives events (the signing secret is never shown here)."""

    id: str
    merchant: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created: datetime
    object: Literal["webhook_endpoint"] = "webhook_endpoint"


class WebhookEndpointWithSecret(WebhookEndpoint, kw_only=True):
    """An endpoint as created or rotated: the only time its signing secret is shown."""

    secret: str


class WebhookEndpointList(msgspec.Struct, kw_only=True):
    """A merchant's endpoints."""

    data: list[WebhookEndpoint]
    object: Literal["list"] = "list"


class WebhookAttempt(msgspec.Struct, kw_only=True):
    """One HTTP attempt of a delivery."""

    id: str
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None


class WebhookDelivery(msgspec.Struct, kw_only=True):
    """One message for one endpoint."""

    id: str
    merchant: str
    endpoint: str
    event: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created: datetime
    delivered_at: datetime | None
    object: Literal["webhook_delivery"] = "webhook_delivery"


class WebhookDeliveryDetail(WebhookDelivery, kw_only=True):
    """A delivery with the exact body sent and every attempt, oldest first."""

    payload: str
    attempt_log: list[WebhookAttempt]


class WebhookDeliveryList(msgspec.Struct, kw_only=True):
    """A page of deliveries, newest first."""

    data: list[WebhookDelivery]
    has_more: bool
    object: Literal["list"] = "list"


class WebhookReplay(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Send again every delivery created since a time (optionally of one endpoint)."""

    since: Rfc3339
    endpoint: str | None = None
    merchant: str | None = None
    """ISO keys only: the merchant's id or slug."""


class WebhookReplayResult(msgspec.Struct, kw_only=True):
    """What a bulk replay queued."""

    count: int
    ids: list[str]
    object: Literal["webhook_replay"] = "webhook_replay"


class AuditActor(msgspec.Struct, kw_only=True):
    """Who did it."""

    type: str
    id: str | None


class AuditTarget(msgspec.Struct, kw_only=True):
    """What it was done to."""

    type: str | None
    id: str | None


class AuditEvent(msgspec.Struct, kw_only=True):
    """One record of the merchant's hash-chained audit log."""

    id: str
    seq: int
    type: str
    actor: AuditActor
    target: AuditTarget
    customer: str | None
    data: dict[str, Any]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    occurred_at: datetime
    hash: str
    prev_hash: str
    object: Literal["audit_event"] = "audit_event"


class AuditEventList(msgspec.Struct, kw_only=True):
    """A page of audit records, newest (highest ``seq``) first."""

    data: list[AuditEvent]
    has_more: bool
    object: Literal["list"] = "list"
