"""``/api/v1/audit-events``: a merchant's hash-chained audit log, as pages of JSON or one CSV stream."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Stream

from portal.api.auth import merchant_tenant, require
from portal.api.keys import ApiPrincipal
from portal.api.params import INT64_MAX, Limit, MerchantParam, parse_time, time_query
from portal.api.schemas import AuditActor, AuditEvent, AuditEventList, AuditTarget
from portal.db.engine import fetch, json_value, tenant_transaction
from portal.tenancy.models import MerchantView

COLUMNS = (
    "id, seq, type, actor_type, actor_id, target_type, target_id, customer_id, data, before, after, ip, "
    "user_agent, request_id, occurred_at, hash, prev_hash"
)
FILTERS = """
   AND ($2::text IS NULL OR customer_id = $2)
   AND ($3::text IS NULL OR type = $3)
   AND ($4::timestamptz IS NULL OR occurred_at >= $4)
   AND ($5::timestamptz IS NULL OR occurred_at < $5)
"""
CSV_HEADER = (
    "id", "seq", "type", "occurred_at", "actor_type", "actor_id", "target_type", "target_id", "customer",
    "data", "before", "after", "ip", "user_agent", "request_id", "prev_hash", "hash",
)  # fmt: skip
CSV_BATCH = 500
CSV_DESCRIPTION = f"UTF-8 CSV with a header row ({', '.join(CSV_HEADER)}), oldest record first."
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CustomerParam = Annotated[str | None, QueryParameter(description="Only records about this customer id")]
ActionParam = Annotated[str | None, QueryParameter(description="Only records of this event type")]
SinceParam = Annotated[str | None, time_query("Only records that occurred at or after")]
UntilParam = Annotated[str | None, time_query("Only records that occurred before")]


def to_audit_event(row: dict[str, Any]) -> AuditEvent:
    """A stored record as the API shows it."""
    return AuditEvent(
        id=row["id"],
        seq=row["seq"],
        type=row["type"],
        actor=AuditActor(type=row["actor_type"], id=row["actor_id"]),
        target=AuditTarget(type=row["target_type"], id=row["target_id"]),
        customer=row["customer_id"],
        data=json_value(row["data"]),
        before=json_value(row["before"]),
        after=json_value(row["after"]),
        ip=row["ip"],
        user_agent=row["user_agent"],
        request_id=row["request_id"],
        occurred_at=row["occurred_at"],
        hash=row["hash"],
        prev_hash=row["prev_hash"],
    )


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv_line(values: list[Any] | tuple[Any, ...]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def _csv_row(row: dict[str, Any]) -> list[str]:
    def raw_json(value: Any) -> str:
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

    return [
        row["id"], str(row["seq"]), row["type"], _cell(row["occurred_at"]), row["actor_type"],
        _cell(row["actor_id"]), _cell(row["target_type"]), _cell(row["target_id"]), _cell(row["customer_id"]),
        raw_json(row["data"]), raw_json(row["before"]), raw_json(row["after"]), _cell(row["ip"]),
        _cell(row["user_agent"]), _cell(row["request_id"]), row["prev_hash"], row["hash"],
    ]  # fmt: skip


async def _csv_stream(merchant: MerchantView, filters: tuple[Any, ...]) -> AsyncIterator[bytes]:
    """The header, then matching records oldest first, read in batches (each its own short transaction)."""
    yield _csv_line(CSV_HEADER)
    async with tenant_transaction(merchant.iso_id):
        top = await fetch(
            "SELECT coalesce(max(seq), 0) AS seq FROM portal_audit_event WHERE merchant_id = $1", merchant.id
        )
    last_seq, until_seq = 0, int(top[0]["seq"])
    while last_seq < until_seq:
        async with tenant_transaction(merchant.iso_id):
            rows = await fetch(
                f"SELECT {COLUMNS} FROM portal_audit_event WHERE merchant_id = $1 {FILTERS}"
                " AND seq > $6 AND seq <= $7 ORDER BY seq LIMIT $8",
                merchant.id,
                *filters,
                last_seq,
                until_seq,
                CSV_BATCH,
            )
        if not rows:
            break
        yield b"".join(_csv_line(_csv_row(row)) for row in rows)
        last_seq = int(rows[-1]["seq"])


class AuditEventController(Controller):
    """The audit log of the caller's merchant (ISO keys name the merchant)."""

    path = "/"
    tags = ["audit"]

    @get("/audit-events", summary="List audit records")
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        customer: CustomerParam = None,
        action: ActionParam = None,
        since: SinceParam = None,
        until: UntilParam = None,
        starting_after: Annotated[
            int | None, QueryParameter(ge=1, le=INT64_MAX, description="A seq: the page after it (older records)")
        ] = None,
        limit: Limit = 20,
        merchant: MerchantParam = None,
    ) -> AuditEventList:
        """Records newest first (descending ``seq``); the next page starts after the last ``seq`` shown."""
        require(principal, "audit:read")
        filters = (customer, action, parse_time("since", since), parse_time("until", until))
        tenant = await merchant_tenant(request, principal, merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            rows = await fetch(
                f"SELECT {COLUMNS} FROM portal_audit_event WHERE merchant_id = $1 {FILTERS}"
                " AND ($6::bigint IS NULL OR seq < $6) ORDER BY seq DESC LIMIT $7",
                tenant.merchant.id,
                *filters,
                starting_after,
                limit + 1,
            )
        return AuditEventList(data=[to_audit_event(row) for row in rows[:limit]], has_more=len(rows) > limit)

    @get(
        "/audit-events.csv",
        summary="Export audit records as CSV",
        media_type="text/csv",
        responses={
            200: ResponseSpec(
                data_container=str, media_type="text/csv", description=CSV_DESCRIPTION, generate_examples=False
            )
        },
    )
    async def export_csv(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        customer: CustomerParam = None,
        action: ActionParam = None,
        since: SinceParam = None,
        until: UntilParam = None,
        merchant: MerchantParam = None,
    ) -> Stream:
        """Every matching record, oldest first, streamed as CSV with a header row."""
        require(principal, "audit:read")
        filters = (customer, action, parse_time("since", since), parse_time("until", until))
        tenant = await merchant_tenant(request, principal, merchant)
        return Stream(
            _csv_stream(tenant.merchant, filters),
            media_type="text/csv",
            headers={"content-disposition": f'attachment; filename="audit-{tenant.merchant.slug}.csv"'},
        )
