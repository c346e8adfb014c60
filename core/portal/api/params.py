"""Parameter and field types shared by the API's routes: merchants, pages, cursors and times.

Times are strict RFC 3339 with a zone (``2026-12-04T10:00:00Z``); a bare number or a time
without a zone is refused with 400. Integers are bounded to what PostgreSQL's ``bigint`` holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, overload

import msgspec
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

INT64_MAX = 2**63 - 1
RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
"""A date, a time and a zone (``Z`` or ``±hh:mm``), as RFC 3339 section 5.6 writes them."""

Rfc3339 = Annotated[
    str,
    msgspec.Meta(
        pattern=RFC3339,
        description="An RFC 3339 time with a zone, like 2026-12-04T10:00:00Z",
        extra_json_schema={"format": "date-time"},
    ),
]

MerchantParam = Annotated[str | None, QueryParameter(description="ISO keys: the merchant's id or slug", max_length=200)]
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1 to 100")]


def time_query(description: str) -> object:
    """A query parameter holding an RFC 3339 time with a zone."""
    return QueryParameter(description=f"{description} (RFC 3339 with a zone)", pattern=RFC3339, max_length=40)


@overload
def parse_time(name: str, value: str) -> datetime: ...
@overload
def parse_time(name: str, value: None) -> None: ...
@overload
def parse_time(name: str, value: str | None) -> datetime | None: ...


def parse_time(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 text as an aware datetime; 400 naming ``name`` when it is not a real time."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise ValidationException(detail=f"'{name}' is not a valid time: {exc}.") from exc
    if parsed.tzinfo is None:  # the pattern requires a zone; kept for callers that skip it
        raise ValidationException(detail=f"'{name}' needs a time zone (for example a trailing 'Z').")
    return parsed
