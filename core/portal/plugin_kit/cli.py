"""``portal plugin``: write a new plugin package, and a plugin's next migration."""

from __future__ import annotations

import asyncio

import click


def register(group: click.Group) -> None:
    """Add ``migration`` to ``group`` (``portal plugin``)."""

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
