"""Tables of the event layer. The application role may only INSERT and SELECT audit rows."""

from __future__ import annotations

from piccolo.columns import JSONB, BigInt, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.tenancy.tables import Iso, Merchant


class AuditEvent(Table, tablename="portal_audit_event"):
    """One audited action; ``hash`` chains it to the merchant's previous record."""

    id = Varchar(length=40, primary_key=True)
    """The event id (``evt_...``), also the webhook payload's ``id``."""
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False)
    seq = BigInt()
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)
    type = Varchar(length=100)
    actor_type = Varchar(length=20)
    actor_id = Varchar(length=64, null=True, default=None)
    target_type = Varchar(length=40, null=True, default=None)
    target_id = Varchar(length=64, null=True, default=None)
    customer_id = Varchar(length=40, null=True, default=None)
    data = JSONB(default="{}")
    before = JSONB(null=True, default=None)
    after = JSONB(null=True, default=None)
    ip = Varchar(length=64, null=True, default=None)
    user_agent = Text(null=True, default=None)
    request_id = Varchar(length=64, null=True, default=None)
    occurred_at = Timestamptz(default=TimestamptzNow())


class WebhookEndpoint(Table, tablename="portal_webhook_endpoint"):
    """Where a merchant receives events, signed with the endpoint's ``whsec_`` secret."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False, index=True)
    url = Text()
    description = Text(default="")
    event_types = JSONB(default="[]")
    """Event types to send; empty: all."""
    enabled = Boolean(default=True)
    disabled_reason = Text(null=True, default=None)
    secret = Varchar(length=100)
    previous_secret = Varchar(length=100, null=True, default=None)
    previous_secret_until = Timestamptz(null=True, default=None)
    failing_since = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class WebhookDelivery(Table, tablename="portal_webhook_delivery"):
    """One message for one endpoint (the outbox row); its id is the ``webhook-id`` header."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False)
    endpoint_id = ForeignKey(references=WebhookEndpoint, null=False, index=True)
    event_id = Varchar(length=40, index=True)
    event_type = Varchar(length=100)
    payload = Text()
    """The exact JSON body sent (signed as is)."""
    status = Varchar(length=16, default="pending")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=TimestamptzNow())
    last_status = Integer(null=True, default=None)
    last_error = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    delivered_at = Timestamptz(null=True, default=None)


class WebhookAttempt(Table, tablename="portal_webhook_attempt"):
    """One HTTP attempt of a delivery."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    delivery_id = ForeignKey(references=WebhookDelivery, null=False, index=True)
    attempted_at = Timestamptz(default=TimestamptzNow())
    status_code = Integer(null=True, default=None)
    latency_ms = Integer(default=0)
    response_excerpt = Text(null=True, default=None)
    error = Text(null=True, default=None)


class EventHandling(Table, tablename="portal_event_handling"):
    """One plugin handler's run of one event in the worker, retried until it succeeds."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False)
    event_id = Varchar(length=40, index=True)
    handler = Varchar(length=120)
    status = Varchar(length=16, default="pending")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=TimestamptzNow())
    last_error = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    done_at = Timestamptz(null=True, default=None)


EVENT_TABLES: tuple[type[Table], ...] = (AuditEvent, WebhookEndpoint, WebhookDelivery, WebhookAttempt, EventHandling)
