"""``portal plugin``: write a new plugin package, and a plugin's next migration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click


def register(group: click.Group) -> None:
    """Add ``new`` and ``migration`` to ``group`` (``portal plugin``)."""

    @group.command("new")
    @click.argument("key")
    @click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(),
        show_default=True,
        help="Folder in which the package folder portal-KEY is made.",
    )
    def new_command(key: str, directory: Path) -> None:
        """Write the plugin package portal-KEY (module portal_KEY): a page, a form, an event, a table, tests."""
        from portal.plugin_kit.scaffold import ScaffoldError, scaffold

        try:
            folder = scaffold(key, directory)
        except ScaffoldError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Wrote {folder}. Next:")
        click.echo(f"  uv pip install -e {folder}   # into the environment where portal-core is installed")
        click.echo(f"  cd {folder} && pytest")

    @group.command("migration")
    @click.argument("key")
    @click.option("--description", default="", help="What the migration does (default: the tables it changes).")
    def migration_command(key: str, description: str) -> None:
        """Write plugin KEY's next migration from its table classes (row-level security on new tenant tables)."""
        from portal.plugin_kit import migrations

        try:
            app = migrations.plugin_app(key)
            found = asyncio.run(migrations.next_migration(app, description=description))
        except migrations.NoChangesError as exc:
            click.echo(str(exc).capitalize() + ".")
            return
        except migrations.MigrationKitError as exc:
            raise click.ClickException(str(exc)) from exc
        path = migrations.write(found)
        click.echo(f"Wrote {path}.")
        if found.tenant_tables:
            click.echo(f"Row-level security on: {', '.join(found.tenant_tables)}.")
