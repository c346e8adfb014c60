"""``/api/v1/webhook-endpoints`` and ``/api/v1/webhook-deliveries``: subscriptions, history, replay."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.api.auth import merchant_scope, merchant_tenant, require
from portal.api.keys import ApiPrincipal
from portal.api.openapi import problem
from portal.api.params import Limit, MerchantParam, parse_time
from portal.api.schemas import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryDetail,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookReplay,
    WebhookReplayResult,
)
from portal.db.engine import fetch, json_value, tenant_transaction
from portal.events import destinations
from portal.events.replay import replay, replay_since
from portal.events.signing import new_secret
from portal.ids import new_id
from portal.web.state import platform_of

DELETED = "deleted"
"""``disabled_reason`` of a deleted endpoint: kept (disabled, secret wiped) so its deliveries keep their history."""
LIVE = f"disabled_reason IS DISTINCT FROM '{DELETED}'"
ENDPOINT_COLUMNS = (
    "id, merchant_id, url, description, event_types, enabled, disabled_reason, failing_since, "
    "previous_secret_until, created_at"
)
DELIVERY_COLUMNS = (
    "id, merchant_id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, last_status, "
    "last_error, created_at, delivered_at"
)
STATUSES = ("pending", "succeeded", "failed", "cancelled")


def check_url(url: str, *, allow_private: bool) -> str:
    """422 unless ``url`` is an allowed webhook destination (see :mod:`portal.events.destinations`)."""
    try:
        destinations.check_url(url, allow_private=allow_private)
    except destinations.DestinationRefusedError as exc:
        raise HTTPException(status_code=422, detail=exc.detail) from exc
    return url


def check_event_types(request: Request[Any, Any, Any], event_types: list[str]) -> list[str]:
    """422 unless every type is registered; duplicates dropped, order kept."""
    registered = platform_of(request).registry.event_types
    unknown = sorted({name for name in event_types if name not in registered})
    if unknown:
        raise HTTPException(status_code=422, detail=f"Unknown event types: {', '.join(unknown)}.")
    return list(dict.fromkeys(event_types))


def _json_list(value: Any) -> list[str]:
    loaded = json_value(value)
    return [str(item) for item in loaded or []]


def to_endpoint(row: dict[str, Any]) -> WebhookEndpoint:
    """A table row as the API shows it (never its secrets)."""
    return WebhookEndpoint(
        id=row["id"],
        merchant=row["merchant_id"],
        url=row["url"],
        description=row["description"],
        event_types=_json_list(row["event_types"]),
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        failing_since=row["failing_since"],
        previous_secret_expires_at=row["previous_secret_until"],
        created=row["created_at"],
    )


def with_secret(row: dict[str, Any], secret: str) -> WebhookEndpointWithSecret:
    """The endpoint plus its new secret, for the one response that shows it."""
    return WebhookEndpointWithSecret(**msgspec.structs.asdict(to_endpoint(row)), secret=secret)


def to_delivery(row: dict[str, Any]) -> WebhookDelivery:
    """A delivery row as the API shows it."""
    return WebhookDelivery(
        id=row["id"],
        merchant=row["merchant_id"],
        endpoint=row["endpoint_id"],
        event=row["event_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        created=row["created_at"],
        delivered_at=row["delivered_at"],
    )


async def find_endpoint(request: Request[Any, Any, Any], principal: ApiPrincipal, endpoint_id: str) -> dict[str, Any]:
    """A live endpoint the key may act on; else 404. Runs in its own tenant transaction."""
    async with tenant_transaction(principal.iso_id):
        rows = await fetch(
            f"SELECT {ENDPOINT_COLUMNS} FROM portal_webhook_endpoint "
            f"WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2) AND {LIVE}",
            endpoint_id,
            merchant_scope(request, principal),
        )
    if not rows:
        raise NotFoundException(detail="No such webhook endpoint.")
    return rows[0]


async def find_delivery(request: Request[Any, Any, Any], principal: ApiPrincipal, delivery_id: str) -> dict[str, Any]:
    """A delivery the key may see, with its payload; else 404."""
    async with tenant_transaction(principal.iso_id):
        rows = await fetch(
            f"SELECT {DELIVERY_COLUMNS}, payload FROM portal_webhook_delivery "
            "WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2)",
            delivery_id,
            merchant_scope(request, principal),
        )
    if not rows:
        raise NotFoundException(detail="No such webhook delivery.")
    return rows[0]


async def insert_endpoint(
    iso_id: str,
    merchant_id: str,
    url: str,
    description: str | None,
    event_types: list[str],
    secret: str,
    *,
    enabled: bool = True,
) -> dict[str, Any]:
    """Save a webhook endpoint of a merchant (its URL and event types already checked); its row."""
    async with tenant_transaction(iso_id):
        rows = await fetch(
            f"""
            INSERT INTO portal_webhook_endpoint (id, iso_id, merchant_id, url, description, event_types, enabled,
                secret)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) RETURNING {ENDPOINT_COLUMNS}
            """,
            new_id("we"),
            iso_id,
            merchant_id,
            url,
            description,
            json.dumps(event_types),
            enabled,
            secret,
        )
    return rows[0]


class WebhookEndpointController(Controller):
    """A merchant's webhook endpoints."""

    path = "/webhook-endpoints"
    tags = ["webhooks"]

    @post("/", status_code=201, summary="Create a webhook endpoint")
    async def create(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        data: JSONBody[WebhookEndpointCreate],
    ) -> WebhookEndpointWithSecret:
        """Subscribe a URL; the answer is the only one that shows the signing secret."""
        require(principal, "webhooks:write")
        settings = platform_of(request).settings
        url = check_url(data.url, allow_private=settings.webhook_allow_private)
        event_types = check_event_types(request, data.event_types)
        tenant = await merchant_tenant(request, principal, data.merchant)
        merchant = tenant.merchant
        secret = new_secret()
        row = await insert_endpoint(
            merchant.iso_id, merchant.id, url, data.description, event_types, secret, enabled=data.enabled
        )
        return with_secret(row, secret)

    @get("/", summary="List webhook endpoints")
    async def list_endpoints(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], merchant: MerchantParam = None
    ) -> WebhookEndpointList:
        """The merchant's endpoints, oldest first."""
        require(principal, "webhooks:read")
        tenant = await merchant_tenant(request, principal, merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            rows = await fetch(
                f"SELECT {ENDPOINT_COLUMNS} FROM portal_webhook_endpoint WHERE merchant_id = $1 AND {LIVE} "
                "ORDER BY created_at, id",
                tenant.merchant.id,
            )
        return WebhookEndpointList(data=[to_endpoint(row) for row in rows])

    @get("/{endpoint_id:str}", summary="Retrieve a webhook endpoint")
    async def retrieve(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], endpoint_id: FromPath[str]
    ) -> WebhookEndpoint:
        """One endpoint; 404 for another tenant's id."""
        require(principal, "webhooks:read")
        return to_endpoint(await find_endpoint(request, principal, endpoint_id))

    @patch("/{endpoint_id:str}", summary="Update a webhook endpoint")
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        endpoint_id: FromPath[str],
        data: JSONBody[WebhookEndpointUpdate],
    ) -> WebhookEndpoint:
        """Change url, event types, description or enabled; enabling clears the failure state."""
        require(principal, "webhooks:write")
        sets: list[str] = []
        values: list[Any] = []

        def assign(sql: str, value: Any) -> None:
            values.append(value)
            sets.append(sql.replace("?", f"${len(values) + 1}"))

        settings = platform_of(request).settings
        if data.url is not msgspec.UNSET:
            assign("url = ?", check_url(data.url, allow_private=settings.webhook_allow_private))
        if data.event_types is not msgspec.UNSET:
            assign("event_types = ?::jsonb", json.dumps(check_event_types(request, data.event_types)))
        if data.description is not msgspec.UNSET:
            assign("description = ?", data.description)
        if data.enabled is not msgspec.UNSET:
            assign("enabled = ?", data.enabled)
            if data.enabled:
                sets.append("disabled_reason = NULL, failing_since = NULL")
        if not sets:
            raise ValidationException(detail="Give at least one of 'url', 'event_types', 'description' or 'enabled'.")
        found = await find_endpoint(request, principal, endpoint_id)
        assignments = ", ".join(sets)
        async with tenant_transaction(principal.iso_id):
            rows = await fetch(
                f"UPDATE portal_webhook_endpoint SET {assignments} WHERE id = $1 AND {LIVE} "
                f"RETURNING {ENDPOINT_COLUMNS}",
                found["id"],
                *values,
            )
        if not rows:
            raise NotFoundException(detail="No such webhook endpoint.")
        return to_endpoint(rows[0])

    @delete("/{endpoint_id:str}", status_code=204, summary="Delete a webhook endpoint")
    async def remove(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], endpoint_id: FromPath[str]
    ) -> None:
        """Stop sending to the endpoint; its pending deliveries become ``cancelled``."""
        require(principal, "webhooks:write")
        found = await find_endpoint(request, principal, endpoint_id)
        async with tenant_transaction(principal.iso_id):
            rows = await fetch(
                f"""
                UPDATE portal_webhook_endpoint
                   SET enabled = false, disabled_reason = '{DELETED}', secret = '', previous_secret = NULL,
                       previous_secret_until = NULL
                 WHERE id = $1 AND {LIVE} RETURNING id
                """,
                found["id"],
            )
            if not rows:
                raise NotFoundException(detail="No such webhook endpoint.")
            await fetch(
                "UPDATE portal_webhook_delivery SET status = 'cancelled', next_attempt_at = NULL "
                "WHERE endpoint_id = $1 AND status = 'pending'",
                found["id"],
            )

    @post("/{endpoint_id:str}/rotate-secret", status_code=200, summary="Rotate an endpoint's signing secret")
    async def rotate_secret(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], endpoint_id: FromPath[str]
    ) -> WebhookEndpointWithSecret:
        """A new secret, shown once; the old one keeps signing too until ``previous_secret_expires_at``."""
        require(principal, "webhooks:write")
        overlap = timedelta(hours=platform_of(request).settings.webhook_secret_overlap_hours)
        found = await find_endpoint(request, principal, endpoint_id)
        secret = new_secret()
        async with tenant_transaction(principal.iso_id):
            rows = await fetch(
                f"""
                UPDATE portal_webhook_endpoint
                   SET previous_secret = secret, previous_secret_until = now() + $2::interval, secret = $3
                 WHERE id = $1 AND {LIVE} RETURNING {ENDPOINT_COLUMNS}
                """,
                found["id"],
                overlap,
                secret,
            )
        if not rows:
            raise NotFoundException(detail="No such webhook endpoint.")
        return with_secret(rows[0], secret)


class WebhookDeliveryController(Controller):
    """Messages sent (or to be sent) to a merchant's endpoints, and replays."""

    path = "/webhook-deliveries"
    tags = ["webhooks"]

    @get("/", summary="List webhook deliveries")
    async def list_deliveries(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        endpoint: Annotated[str | None, QueryParameter(description="Only deliveries to this endpoint id")] = None,
        status: Annotated[str | None, QueryParameter(description="pending, succeeded, failed or cancelled")] = None,
        event_type: Annotated[str | None, QueryParameter(description="Only deliveries of this event type")] = None,
        starting_after: Annotated[
            str | None, QueryParameter(description="A delivery id: the page after it (older deliveries)")
        ] = None,
        limit: Limit = 20,
        merchant: MerchantParam = None,
    ) -> WebhookDeliveryList:
        """The merchant's deliveries, newest first, optionally of one endpoint, status or event type."""
        require(principal, "webhooks:read")
        if status is not None and status not in STATUSES:
            raise ValidationException(detail=f"'status' is one of {', '.join(STATUSES)}.")
        tenant = await merchant_tenant(request, principal, merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            cursor: tuple[datetime, str] | None = None
            if starting_after is not None:
                found = await fetch(
                    "SELECT created_at, id FROM portal_webhook_delivery WHERE id = $1 AND merchant_id = $2",
                    starting_after,
                    tenant.merchant.id,
                )
                if not found:
                    raise ValidationException(detail="'starting_after' is not a delivery of this merchant.")
                cursor = (found[0]["created_at"], found[0]["id"])
            rows = await fetch(
                f"""
                SELECT {DELIVERY_COLUMNS} FROM portal_webhook_delivery
                 WHERE merchant_id = $1
                   AND ($2::text IS NULL OR endpoint_id = $2)
                   AND ($3::text IS NULL OR status = $3)
                   AND ($4::text IS NULL OR event_type = $4)
                   AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6::text))
                 ORDER BY created_at DESC, id DESC
                 LIMIT $7
                """,
                tenant.merchant.id,
                endpoint,
                status,
                event_type,
                cursor[0] if cursor else None,
                cursor[1] if cursor else None,
                limit + 1,
            )
        return WebhookDeliveryList(data=[to_delivery(row) for row in rows[:limit]], has_more=len(rows) > limit)

    @get("/{delivery_id:str}", summary="Retrieve a webhook delivery")
    async def retrieve(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], delivery_id: FromPath[str]
    ) -> WebhookDeliveryDetail:
        """One delivery with the exact body sent and its attempts, oldest first."""
        require(principal, "webhooks:read")
        row = await find_delivery(request, principal, delivery_id)
        async with tenant_transaction(principal.iso_id):
            attempts = await fetch(
                "SELECT id, attempted_at, status_code, latency_ms, response_excerpt, error "
                "FROM portal_webhook_attempt WHERE delivery_id = $1 ORDER BY attempted_at, id",
                row["id"],
            )
        base = msgspec.structs.asdict(to_delivery(row))
        return WebhookDeliveryDetail(
            **base, payload=row["payload"], attempt_log=[WebhookAttempt(**attempt) for attempt in attempts]
        )

    @post(
        "/{delivery_id:str}/replay",
        status_code=201,
        summary="Replay a webhook delivery",
        responses={409: problem(409, "The delivery's endpoint was deleted or is disabled.")},
    )
    async def replay_one(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], delivery_id: FromPath[str]
    ) -> WebhookDelivery:
        """Queue the same message again to the same endpoint, as a new delivery."""
        require(principal, "webhooks:write")
        row = await find_delivery(request, principal, delivery_id)
        async with tenant_transaction(principal.iso_id):
            endpoint = await fetch(
                f"SELECT id, enabled FROM portal_webhook_endpoint WHERE id = $1 AND {LIVE}", row["endpoint_id"]
            )
            if not endpoint:
                raise HTTPException(status_code=409, detail="The delivery's endpoint was deleted.")
            if not endpoint[0]["enabled"]:
                raise HTTPException(status_code=409, detail="The delivery's endpoint is disabled; enable it first.")
            copy_id = await replay(platform_of(request), principal.iso_id, row["merchant_id"], row["id"])
            created = await fetch(f"SELECT {DELIVERY_COLUMNS} FROM portal_webhook_delivery WHERE id = $1", copy_id)
        return to_delivery(created[0])

    @post("/replay", status_code=201, summary="Replay webhook deliveries since a time")
    async def replay_since(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], data: JSONBody[WebhookReplay]
    ) -> WebhookReplayResult:
        """Queue again, once per endpoint and event, every message created since ``since`` to enabled endpoints."""
        require(principal, "webhooks:write")
        since = parse_time("since", data.since)
        tenant = await merchant_tenant(request, principal, data.merchant)
        merchant = tenant.merchant
        async with tenant_transaction(merchant.iso_id):
            if data.endpoint is not None:
                endpoint = await fetch(
                    f"SELECT id FROM portal_webhook_endpoint WHERE id = $1 AND merchant_id = $2 AND {LIVE}",
                    data.endpoint,
                    merchant.id,
                )
                if not endpoint:
                    raise NotFoundException(detail="No such webhook endpoint.")
            ids = await replay_since(platform_of(request), merchant.iso_id, merchant.id, since, data.endpoint)
        return WebhookReplayResult(count=len(ids), ids=ids)
