"""The harbor theme (Harbor Payments): templates and CSS over the base theme."""

from __future__ import annotations

from pathlib import Path

from portal.sdk import ThemeSpec, hookimpl

HERE = Path(__file__).resolve().parent


@hookimpl
def portal_themes() -> list[ThemeSpec]:
    """Provide the ``harbor`` theme."""
    return [
        ThemeSpec(
            key="harbor",
            title="Harbor Payments",
            templates=HERE / "templates",
            static=HERE / "static",
            parent="base",
        )
    ]
