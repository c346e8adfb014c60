from pathlib import Path

from portal.sdk import ThemeSpec, hookimpl

HERE = Path(__file__).resolve().parent


@hookimpl
def portal_themes() -> list[ThemeSpec]:
    return [
        ThemeSpec(
            key="harbor",
            title="Harbor Payments",
            templates=HERE / "templates",
            static=HERE / "static",
            parent="base",
        )
    ]
