"""A theme that overrides a plugin template and extends the original."""

from __future__ import annotations

from pathlib import Path

from portal.sdk import ThemeSpec, hookimpl

HERE = Path(__file__).resolve().parent


@hookimpl
def portal_themes() -> list[ThemeSpec]:
    return [ThemeSpec(key="harbor", title="Harbor", templates=HERE / "templates", parent="base")]
