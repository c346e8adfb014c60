"""The base theme: layout, navigation, Overview and error pages every other theme builds on."""

from __future__ import annotations

from pathlib import Path

from portal.sdk import ThemeSpec, hookimpl

HERE = Path(__file__).resolve().parent


@hookimpl
def portal_themes() -> list[ThemeSpec]:
    """Provide the ``base`` theme."""
    return [
        ThemeSpec(
            key="base",
            title="Base",
            templates=HERE / "templates",
            static=HERE / "static",
            parent=None,
        )
    ]
