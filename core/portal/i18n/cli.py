"""``portal i18n``: extract messages into each package's catalogs, and check they are complete."""

from __future__ import annotations

from pathlib import Path

import click

from portal.i18n.catalogs import CORE_LOCALE
from portal.i18n.extract import check, update


def installed_packages() -> dict[str, Path]:
    """Name to package folder: core (``portal``), each installed plugin and theme."""
    from portal.config import load_settings
    from portal.plugins.manager import create_plugin_manager
    from portal.plugins.registry import PluginRegistry

    registry = PluginRegistry(create_plugin_manager(load_settings().load_plugins, ()))
    packages = {"portal": CORE_LOCALE.parent}
    for key, info in registry.plugins.items():
        if info.templates is not None:
            packages[f"plugin {key}"] = info.templates.parent
    for key, spec in registry.themes.items():
        packages[f"theme {key}"] = spec.templates.parent
    return packages


def _chosen(packages: tuple[Path, ...]) -> dict[str, Path]:
    if not packages:
        return installed_packages()
    return {str(folder): folder.resolve() for folder in packages}


def register(group: click.Group) -> None:
    """Add ``extract`` and ``check`` to ``group`` (``portal i18n``)."""

    @group.command("extract")
    @click.argument("packages", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
    def extract_command(packages: tuple[Path, ...]) -> None:
        """Update the .po files of PACKAGES (package folders; default: core, every plugin and theme)."""
        for name, folder in _chosen(packages).items():
            for path in update(folder, name):
                click.echo(f"{name}: {path}")

    @group.command("check")
    @click.argument("packages", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
    def check_command(packages: tuple[Path, ...]) -> None:
        """Fail when a message of PACKAGES is missing, untranslated or left over in a .po file."""
        failures: list[str] = []
        for name, folder in _chosen(packages).items():
            failures += check(folder, name).lines(name)
        for line in failures:
            click.echo(line, err=True)
        if failures:
            raise click.ClickException(f"{len(failures)} catalog problem(s)")
        click.echo("every message is translated in every language")
