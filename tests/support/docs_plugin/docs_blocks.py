"""The docs' fragments: a block marked ``<!-- docs-run: tests/.../FILE::NAME -->``."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).parents[3] / "docs"


def docs_block(page: str, name: str) -> str:
    """The code of the one block of ``docs/<page>`` that ``NAME`` (a test or a handler here) runs."""
    found = re.findall(
        rf"<!-- docs-run: tests/[\w/]+\.py::{name} -->\n```[\w+]*\n(.*?)```",
        (DOCS / page).read_text(encoding="utf-8"),
        flags=re.DOTALL,
    )
    assert len(found) == 1, f"docs/{page} marks {len(found)} blocks for {name}"
    return str(found[0])
