"""A theme on top of ``harbor`` that extends the base layout."""

from __future__ import annotations

from pathlib import Path

from portal.plugin import ThemeSpec, hookimpl

HERE = Path(__file__).resolve().parent


@hookimpl
def portal_themes() -> list[ThemeSpec]:
    return [ThemeSpec(key="harbor-night", title="Harbor night", templates=HERE / "templates", parent="harbor")]
