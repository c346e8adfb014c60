"""The summit theme (Summit Merchant Services): templates and CSS over the base theme."""

from __future__ import annotations

from pathlib import Path

from portal.sdk import ThemeSpec, hookimpl

HERE = Path(__file__).resolve().parent


@hookimpl
def portal_themes() -> list[ThemeSpec]:
    """Provide the ``summit`` theme."""
    return [
        ThemeSpec(
            key="summit",
            title="Summit Merchant Services",
            templates=HERE / "templates",
            static=HERE / "static",
            parent="base",
        )
    ]
