"""``portal migrate``: apply every installed app's piccolo migrations in dependency order."""

from __future__ import annotations

import contextlib
import io
import logging

import asyncpg
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppRegistry

from portal.db import piccolo_conf
from portal.db.engine import ENGINE, fetch
from portal.db.security import APP_ROLE

log = logging.getLogger(__name__)

_LOCK_KEY = 0x706F7274616C  # "portal": one migrator at a time per database


class MigrationError(RuntimeError):
    """A migration failed; the message names the app and the migration."""


def use_apps(app_modules: list[str]) -> None:
    """Point piccolo's registry at core plus the given plugin app modules."""
    modules = ["portal.db.piccolo_app", *[m for m in app_modules if m != "portal.db.piccolo_app"]]
    piccolo_conf.APP_REGISTRY = AppRegistry(apps=modules)


def installed_migrations() -> dict[str, frozenset[str]]:
    """Migration ids of every registered app, read from the installed code (no query)."""
    manager = BaseMigrationManager()
    found: dict[str, frozenset[str]] = {}
    for app_name in manager.get_sorted_app_names():
        app_config = manager.get_app_config(app_name)
        with contextlib.redirect_stdout(io.StringIO()):
            found[app_name] = frozenset(manager.get_migration_modules(app_config.resolved_migrations_folder_path))
    return found


async def applied_migrations() -> dict[str, set[str]]:
    """Migration ids recorded as applied, per app: one query."""
    rows = await fetch(f"SELECT app_name, name FROM {Migration._meta.tablename}")
    applied: dict[str, set[str]] = {}
    for row in rows:
        applied.setdefault(str(row["app_name"]), set()).add(str(row["name"]))
    return applied


def missing(installed: dict[str, frozenset[str]], applied: dict[str, set[str]]) -> dict[str, list[str]]:
    """Installed migration ids not recorded as applied, per app, in the order they would run."""
    pending = {app: sorted(ids - applied.get(app, set())) for app, ids in installed.items()}
    return {app: ids for app, ids in pending.items() if ids}


async def pending_migrations() -> dict[str, list[str]]:
    """Migration ids not yet applied, per app, in the order they would run (creates the record table)."""
    await BaseMigrationManager().create_migration_table()
    return missing(installed_migrations(), await applied_migrations())


async def migrate(owner_dsn: str, app_role_password: str | None = None) -> dict[str, list[str]]:
    """Apply pending migrations as the owner; return what ran. A second run applies nothing."""
    ENGINE.config = {"dsn": owner_dsn}
    lock = await asyncpg.connect(owner_dsn)
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        applied = await pending_migrations()
        manager = BaseMigrationManager()
        for app_name in manager.get_sorted_app_names():
            if app_name not in applied:
                continue
            output = io.StringIO()
            try:
                with contextlib.redirect_stdout(output):
                    result = await ForwardsMigrationManager(app_name=app_name).run()
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migrations of {app_name!r} failed: {exc}") from exc
            log.debug("migrations of %s:\n%s", app_name, output.getvalue())
            if not result.success:
                raise MigrationError(f"migrations of {app_name!r} failed: {result.message}")
            log.info("applied %s migration(s) of %s", len(applied[app_name]), app_name)
        if app_role_password:
            await lock.execute(f"ALTER ROLE {APP_ROLE} PASSWORD {_literal(app_role_password)}")
        return applied
    finally:
        await lock.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        await lock.close()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
