"""One input policy at the edge, for pages, forms and the API alike.

Before any handler (and so before any database call) every request's path, query parameters
and JSON or form body are checked:

- text must be valid UTF-8 and hold no NUL, no other C0 control character and no lone surrogate;
  tab, CR and LF are allowed in body fields only (a field that must be a single line says so
  in its own type with :data:`ONE_LINE`), never in a path or a query parameter;
- JSON may nest at most :data:`MAX_JSON_DEPTH` levels, and its integers must fit in 64 bits;
- a body is at most the route's ``request_max_body_size``;
- a body is checked the way its handler decodes it (JSON or a form), whatever its
  ``Content-Type`` claims, and multipart bodies are refused unless the handler reads multipart.

A refusal is a 400 naming the offending field: a problem document for API clients, a readable
page for browsers (see :mod:`portal.web.errors`). Routes added later inherit all of this.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal, cast
from urllib.parse import unquote_to_bytes

import msgspec
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import ClientException
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

MAX_JSON_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Source = Literal["path", "query", "body"]
BodyKind = Literal["json", "form", "multipart"]
BODY_OPTION = "request_body"
"""Handler ``opt`` key: how a handler that reads its raw body decodes it (``json`` or ``form``)."""

_FORBIDDEN_IN_BODY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_FORBIDDEN_ANYWHERE = re.compile(r"[\x00-\x1f\ud800-\udfff]")

ONE_LINE = r"^[^\x00-\x1f]*$"
"""The pattern of a single-line text field: no tab, CR, LF or other control character."""


class InputRefusedError(ClientException):
    """A request whose input breaks the policy: 400, naming the field."""

    status_code = 400

    def __init__(self, source: Source, field: str, problem: str) -> None:
        where = {"path": "The path", "query": f"The query parameter '{field}'", "body": f"The field '{field}'"}[source]
        super().__init__(detail=f"{where} {problem}.", extra=[{"key": field, "source": source, "message": problem}])


def describe_character(char: str) -> str:
    """``U+0000`` style name of a refused character."""
    return f"U+{ord(char):04X}"


def check_text(value: str, source: Source, field: str, *, multiline: bool = False) -> None:
    """Raise :class:`InputRefusedError` when ``value`` holds a character the policy refuses."""
    found = (_FORBIDDEN_IN_BODY if multiline else _FORBIDDEN_ANYWHERE).search(value)
    if found is not None:
        char = found.group()
        kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
        raise InputRefusedError(source, field, f"contains {kind} ({describe_character(char)})")


def decode_utf8(raw: bytes, source: Source, field: str) -> str:
    """Strict UTF-8, or :class:`InputRefusedError`."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRefusedError(source, field, "is not valid UTF-8") from exc


def query_pairs(query_string: bytes) -> Iterator[tuple[str, str]]:
    """Decoded ``(name, value)`` pairs of a query string or form body, checked as UTF-8."""
    for part in query_string.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = decode_utf8(unquote_to_bytes(raw_name.replace(b"+", b" ")), "query", "(name)")
        value = decode_utf8(unquote_to_bytes(raw_value.replace(b"+", b" ")), "query", name)
        yield name, value


def check_query(query_string: bytes) -> None:
    """Every query parameter's name and value."""
    for name, value in query_pairs(query_string):
        check_text(name, "query", "(name)")
        check_text(value, "query", name)


def check_path(scope: Scope) -> None:
    """The path as sent (percent-decoded bytes, strict UTF-8, no control characters)."""
    raw: bytes | None = scope.get("raw_path")
    if raw:
        raw = raw.split(b"?", 1)[0]
        path = decode_utf8(unquote_to_bytes(raw), "path", "path")
    else:
        path = scope.get("path", "")
    check_text(path, "path", "path")


def _field_name(trail: tuple[str, ...]) -> str:
    return ".".join(trail) or "(body)"


def check_json_value(document: Any) -> None:
    """Walk a decoded JSON document: depth, text and 64-bit integers."""
    stack: list[tuple[Any, tuple[str, ...], int]] = [(document, (), 1)]
    while stack:
        value, trail, depth = stack.pop()
        if isinstance(value, str):
            check_text(value, "body", _field_name(trail), multiline=True)
        elif isinstance(value, bool) or value is None or isinstance(value, float):
            continue
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise InputRefusedError("body", _field_name(trail), "is a number too large to store")
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise InputRefusedError("body", _field_name(trail), f"nests deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    check_text(key, "body", _field_name((*trail, key)))
                    stack.append((item, (*trail, key), depth + 1))
            else:
                stack.extend((item, (*trail, str(index)), depth + 1) for index, item in enumerate(value))


def check_json(body: bytes) -> None:
    """A JSON body: UTF-8, well formed, then :func:`check_json_value`."""
    if not body.strip():
        return
    decode_utf8(body, "body", "(body)")
    try:
        document = msgspec.json.decode(body)
    except RecursionError as exc:
        raise InputRefusedError("body", "(body)", f"nests deeper than {MAX_JSON_DEPTH} levels") from exc
    except msgspec.DecodeError as exc:
        raise InputRefusedError("body", "(body)", f"is not valid JSON ({exc})") from exc
    check_json_value(document)


def check_form(body: bytes) -> None:
    """An ``application/x-www-form-urlencoded`` body: UTF-8 fields without NUL or other controls."""
    for name, value in query_pairs(body):
        check_text(name, "body", "(name)")
        check_text(value, "body", name, multiline=True)


def content_type_of(scope: Scope) -> str:
    """The media type of the request body, lower case, without parameters."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def declared_body(handler: object) -> BodyKind | None:
    """How ``handler`` reads its ``data``: JSON, a URL-encoded form or multipart; ``None`` without one.

    Litestar decodes a body the way the handler declares it, whatever ``Content-Type`` says, so
    the policy checks it that way too. A handler that reads the raw body itself says how with
    ``opt={BODY_OPTION: "json"}``.
    """
    if not isinstance(handler, HTTPRouteHandler):
        return None
    if handler.opt.get(BODY_OPTION) in ("json", "form", "multipart"):
        return cast(BodyKind, handler.opt[BODY_OPTION])
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    declared = getattr(data.kwarg_definition, "media_type", None)
    if declared == RequestEncodingType.URL_ENCODED:
        return "form"
    if declared == RequestEncodingType.MULTI_PART:
        return "multipart"
    return "json"


def body_check(handler: object, media_type: str) -> BodyKind | None:
    """Which check a body gets: as its handler decodes it, else as its ``Content-Type`` says.

    Multipart bodies are refused (415) unless the handler reads multipart: the form parser would
    otherwise decode them for any handler that looks at a form (the CSRF guard does).
    """
    declared = declared_body(handler)
    if media_type == "multipart/form-data" and declared != "multipart":
        raise ClientException(
            status_code=415, detail="Send this form as application/x-www-form-urlencoded, not multipart/form-data."
        )
    if declared in ("json", "form"):
        return declared
    if declared is None and _is_json(media_type):
        return "json"
    if declared is None and media_type == "application/x-www-form-urlencoded":
        return "form"
    return None


async def read_body(receive: Receive, limit: int | None) -> tuple[bytes, bool]:
    """The whole body (413 past ``limit``), and whether the client disconnected before sending it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise ClientException(status_code=413, detail=f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then carries on with the real one."""
    first: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
    queue: list[ReceiveMessage] = [first]

    async def replay() -> ReceiveMessage:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


class InputPolicyMiddleware(ASGIMiddleware):
    """Apply the input policy to every HTTP request before its handler runs."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check path, query and (JSON or form) body; pass the request on unchanged when they hold."""
        if scope["type"] != ScopeType.HTTP:
            await next_app(scope, receive, send)
            return
        check_path(scope)
        check_query(scope.get("query_string", b""))
        if scope.get("method") in BODY_METHODS:
            handler = scope.get("route_handler")
            kind = body_check(handler, content_type_of(scope))
            if kind is not None:
                limit = handler.resolve_request_max_body_size() if isinstance(handler, HTTPRouteHandler) else None
                body, gone = await read_body(receive, limit)
                if gone:  # nobody is waiting for an answer
                    return
                (check_json if kind == "json" else check_form)(body)
                receive = replaying(body, receive)
        await next_app(scope, receive, send)
