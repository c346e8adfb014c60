"""Logs: nothing a client sends can start a line of its own, and tokens never reach a log."""

from __future__ import annotations

import io
import logging
import re
import sys

from security.conftest import GREENFIELD

from portal.logs import FORMAT, SafeFormatter, configure_logging, escape_controls
from portal.web.app import create_app

RECORD_START = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} [A-Z]+ ")


def capture(logger_name: str) -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter(FORMAT))
    logging.getLogger(logger_name).addHandler(handler)
    return stream, handler


def record_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if RECORD_START.match(line)]


async def test_a_failing_request_cannot_forge_a_log_line(platform, portal_client) -> None:
    stream, handler = capture("portal.web.errors")
    forged = "x%E2%80%A82026-01-01 00:00:00,000 ERROR forged: admin signed in%C2%850000"
    try:
        response = await portal_client(GREENFIELD).get(f"/example/fail/{forged}")
    finally:
        logging.getLogger("portal.web.errors").removeHandler(handler)
    assert response.status_code == 500
    text = stream.getvalue()
    assert "unhandled error on GET /example/fail/" in text
    assert len(record_lines(text)) == 1, text
    assert "\u2028" not in text and "\x85" not in text
    assert "\\u2028" in text and "\\x85" in text


def test_escapes_are_readable() -> None:
    assert escape_controls("a\r\nb\tc\x00d\x85e\u2028") == "a\\r\\nb\\tc\\x00d\\x85e\\u2028"


def test_the_formatter_escapes_controls_in_messages_and_indents_tracebacks() -> None:
    formatter = SafeFormatter(FORMAT)
    record = logging.LogRecord(
        "portal.test", logging.ERROR, __file__, 1, "refused %s", ("a\r\n2026-01-01 00:00:00,000 ERROR forged",), None
    )
    try:
        raise ValueError("bad\n2026-01-01 00:00:00,000 CRITICAL forged from an exception")
    except ValueError:
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert len(record_lines(text)) == 1, text
    assert "a\\r\\n2026-01-01" in text.splitlines()[0]
    assert all(line.startswith("    ") for line in text.splitlines()[1:]), text


def test_tokens_in_error_messages_are_redacted() -> None:
    formatter = SafeFormatter(FORMAT)
    record = logging.LogRecord(
        "portal.test", logging.ERROR, __file__, 1, "failed on %s", ("/access/pt1.lk_x.eyJhIjoxfQ.c2ln",), None
    )
    assert formatter.format(record).endswith("failed on /access/…")


async def test_a_path_with_cr_or_lf_is_refused_before_any_handler(platform, portal_client) -> None:
    stream, handler = capture("portal")
    try:
        response = await portal_client(GREENFIELD).get("/example/fail/x%0d%0a2026-01-01 00:00:00,000 ERROR forged")
    finally:
        logging.getLogger("portal").removeHandler(handler)
    assert response.status_code == 400
    assert "forged" not in stream.getvalue()


def test_the_web_app_keeps_the_safe_formatter(portal_platform) -> None:
    """Building the app must not swap the process's log handlers for the framework's own."""
    root = logging.getLogger()
    saved = [(handler, handler.formatter) for handler in root.handlers]
    try:
        configure_logging("INFO")
        create_app(portal_platform, manage_platform=False)
        assert root.handlers, "no handler on the root logger"
        assert all(isinstance(handler.formatter, SafeFormatter) for handler in root.handlers), root.handlers
    finally:
        for handler, formatter in saved:
            handler.setFormatter(formatter)


def test_a_traceback_cached_by_another_formatter_is_still_made_safe() -> None:
    record = logging.LogRecord("portal.test", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise ValueError("bad\n2026-01-01 00:00:00,000 CRITICAL forged from an exception")
    except ValueError:
        record.exc_info = sys.exc_info()
    logging.Formatter(FORMAT).format(record)  # a plain handler ran first and cached exc_text
    assert record.exc_text
    text = SafeFormatter(FORMAT).format(record)
    assert len(record_lines(text)) == 1, text
