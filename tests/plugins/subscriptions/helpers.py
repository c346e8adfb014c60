"""Reading the subscription pages in tests: dates as the portal writes them, list items, hidden fields."""

from __future__ import annotations

import html
import re
from datetime import datetime
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def day(at: datetime) -> str:
    """``Dec 5, 2026``: the merchant's (New York) calendar day of ``at``, written as in en-US."""
    local = at.astimezone(NEW_YORK)
    return f"{local:%b} {local.day}, {local.year}"


def item(page: str, sub_id: str) -> str:
    """The list item of one subscription on the list page."""
    found = re.search(rf'<li class="card sub-item" id="{sub_id}">(.*?)</li>', page, re.S)
    assert found, f"{sub_id} is not listed"
    return html.unescape(found.group(1))


def text(page: str) -> str:
    """The page's text, tags dropped and whitespace collapsed (for sentences that span elements)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a page's form (the review pages carry the choice in them)."""
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page)}
