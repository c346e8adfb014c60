"""``portal plugin migration``: a plugin's next migration, worked out from its piccolo table classes.

The schema its migrations already create is piccolo's snapshot of their steps (what
``piccolo migrations new --auto`` diffs against); the table classes of the plugin's piccolo app
are the schema wanted. The difference becomes a migration file run by
:class:`portal.db.tenant_migration.TenantMigrationManager`, which turns row-level security on for
every new table with an ``iso_id`` column. So ``tables.py`` is the one source of the schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import re
import string
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import black
from piccolo import __VERSION__ as PICCOLO_VERSION
from piccolo.apps.migrations.auto import DiffableTable, SchemaDiffer, SchemaSnapshot
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.conf.apps import AppConfig

from portal.plugins.manager import ENTRY_POINT_GROUP

TENANT_KEY = "iso_id"
"""A table with this column is tenant-owned: the migration creating it turns row-level security on."""
ID_FORMAT = "%Y-%m-%dT%H:%M:%S:%f"
LINE_LENGTH = 120


class MigrationKitError(Exception):
    """The migration cannot be worked out; the message says why and what to do."""


class NoChangesError(MigrationKitError):
    """The table classes match what the migrations create already."""


@dataclass(frozen=True)
class NewMigration:
    """A migration file to write: its id, where it goes and its text."""

    migration_id: str
    path: Path
    text: str
    tenant_tables: tuple[str, ...]


def plugin_module(key: str) -> ModuleType:
    """The plugin ``key``: its entry point in the ``portal`` group, else the module ``portal_<key>`` on the path."""
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == key:
            loaded = entry_point.load()
            if not isinstance(loaded, ModuleType):
                raise MigrationKitError(f"plugin {key!r} ({entry_point.value}) is not a module")
            return loaded
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(f"portal_{key}")
    except ModuleNotFoundError as exc:
        raise MigrationKitError(
            f"no plugin {key!r}: no entry point {key!r} in the {ENTRY_POINT_GROUP!r} group and no module "
            f"portal_{key} (install the plugin, or run the command in the folder holding portal_{key})"
        ) from exc


def plugin_app(key: str) -> AppConfig:
    """The piccolo app of the plugin ``key`` (from its ``portal_piccolo_apps`` hook)."""
    module = plugin_module(key)
    hook = getattr(module, "portal_piccolo_apps", None)
    app = hook() if callable(hook) else None
    if app is None:
        raise MigrationKitError(f"plugin {key!r} has no piccolo app (implement the portal_piccolo_apps hook)")
    config = getattr(importlib.import_module(app.module), "APP_CONFIG", None)
    if not isinstance(config, AppConfig):
        raise MigrationKitError(f"{app.module} has no APP_CONFIG")
    return config


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()):
        yield


async def _snapshot(app: AppConfig, folder: Path) -> list[DiffableTable]:
    if not folder.is_dir():  # noqa: ASYNC240 - a local folder, read once by a command
        return []
    path = list(sys.path)
    try:
        with _quiet():  # piccolo imports each migration by its bare name, from the folder put on sys.path
            managers = await BaseMigrationManager().get_migration_managers(app_config=app)
    finally:
        sys.path[:] = path
        for name, module in list(sys.modules.items()):
            if Path(getattr(module, "__file__", None) or "/").parent == folder:
                del sys.modules[name]
    return list(SchemaSnapshot(managers).get_snapshot())


def _wanted(app: AppConfig) -> list[DiffableTable]:
    return [
        DiffableTable(
            class_name=table.__name__,
            tablename=table._meta.tablename,
            columns=table._meta.non_default_columns,
            constraints=table._meta.constraints,
            schema=table._meta.schema,
        )
        for table in app.table_classes
    ]


def _hand_written(folder: Path, tables: Iterable[str]) -> list[str]:
    """New tables that a hand-written migration creates in SQL (the snapshot cannot see them)."""
    found = []
    for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
        source = path.read_text(encoding="utf-8")
        for table in tables:
            if re.search(rf"CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?{re.escape(table)}\b", source, re.IGNORECASE):
                found.append(f"{table} ({path.name})")
    return found


def next_id(folder: Path, now: dt.datetime) -> str:
    """An id after every existing one: ``now``, or a second after the latest when that is later."""
    latest = None
    for path in folder.glob("*.py") if folder.is_dir() else []:
        found = re.search(r"""^ID = ["']([^"']+)["']""", path.read_text(encoding="utf-8"), re.MULTILINE)
        if found and (latest is None or found.group(1) > latest):
            latest = found.group(1)
    chosen = now.strftime(ID_FORMAT)
    if latest is not None and chosen <= latest:
        chosen = (dt.datetime.strptime(latest, ID_FORMAT) + dt.timedelta(seconds=1)).strftime(ID_FORMAT)
    return chosen


def file_name(app_name: str, migration_id: str) -> str:
    """Piccolo's file name for a migration: ``<app>_<id with _ for - and :>.py``."""
    allowed = string.ascii_lowercase + string.digits + "_"
    app = "".join(c for c in app_name.lower().replace("-", "_") if c in allowed)
    return f"{app}_{migration_id.replace(':', '_').replace('-', '_').lower()}.py"


def _imports(extra: Iterable[Any]) -> str:
    """Piccolo's imports as ruff's isort writes them: one line per module, names sorted."""
    modules: dict[str, set[str]] = {}
    plain: set[str] = set()
    for item in extra:
        if item.target is None:
            plain.add(item.module)
        else:
            modules.setdefault(item.module, set()).add(item.target)
    lines = [f"import {module}" for module in sorted(plain)]
    lines += [f"from {module} import {', '.join(sorted(names))}" for module, names in sorted(modules.items())]
    return "\n".join(lines)


def render(
    *, app_name: str, migration_id: str, description: str, statements: list[str], imports: str, definitions: list[Any],
    tenant_tables: list[str],
) -> str:  # fmt: skip
    """The migration module's text, formatted."""
    body = "\n    ".join(statements)
    classes = "".join(f"{definition!r}\n\n" for definition in definitions)
    summary = description.replace("\\", "").replace('"', "'").rstrip(".")
    text = f'''"""{summary[:1].upper() + summary[1:]}."""

{imports}

from portal.sdk import TenantMigrationManager

{classes}
ID = "{migration_id}"
VERSION = "{PICCOLO_VERSION}"
DESCRIPTION = {description!r}


async def forwards() -> TenantMigrationManager:
    manager = TenantMigrationManager(
        migration_id=ID, app_name={app_name!r}, description=DESCRIPTION, tenant_tables={tenant_tables!r}
    )
    {body}
    return manager
'''
    formatted: str = black.format_str(text, mode=black.Mode(line_length=LINE_LENGTH))
    return formatted


async def next_migration(app: AppConfig, *, description: str = "", now: dt.datetime | None = None) -> NewMigration:
    """The migration that brings the plugin's migrations to its table classes; raises :class:`NoChangesError`."""
    folder = Path(app.resolved_migrations_folder_path)
    snapshot = await _snapshot(app, folder)
    known = {table.tablename for table in snapshot}
    with _quiet():
        altered = SchemaDiffer(schema=_wanted(app), schema_snapshot=snapshot, auto_input="n").get_alter_statements()
    statements = [line for part in altered for line in part.statements]
    if not statements:
        raise NoChangesError(f"no changes: the migrations of {app.app_name!r} create what its table classes declare")
    created = [t._meta.tablename for t in app.table_classes if t._meta.tablename not in known]
    by_hand = _hand_written(folder, created)
    if by_hand:
        raise MigrationKitError(
            "a hand-written migration creates " + ", ".join(by_hand) + " in SQL, which cannot be compared with the "
            "table classes; change that table with a hand-written migration too"
        )
    tenant = [
        t._meta.tablename for t in app.table_classes if t._meta.tablename in created and _has_column(t, TENANT_KEY)
    ]
    migration_id = next_id(folder, now or dt.datetime.now(dt.UTC))
    text = render(
        app_name=app.app_name,
        migration_id=migration_id,
        description=description or _describe(created, statements),
        statements=statements,
        imports=_imports(i for part in altered for i in part.extra_imports),
        definitions=sorted({d for part in altered for d in part.extra_definitions}),
        tenant_tables=tenant,
    )
    return NewMigration(migration_id, folder / file_name(app.app_name, migration_id), text, tuple(tenant))


def _has_column(table: Any, name: str) -> bool:
    return any(column._meta.db_column_name == name for column in table._meta.columns)


def _describe(created: list[str], statements: list[str]) -> str:
    if created and len(created) == sum(s.startswith("manager.add_table(") for s in statements):
        return "create " + ", ".join(created)
    return "schema changes of " + ", ".join(sorted(set(re.findall(r'tablename="([^"]+)"', "".join(statements)))))


def write(migration: NewMigration) -> Path:
    """Write the migration file (and the migrations package's ``__init__.py`` when missing)."""
    migration.path.parent.mkdir(parents=True, exist_ok=True)
    init = migration.path.parent / "__init__.py"
    if not init.exists():
        init.write_text("", encoding="utf-8")
    migration.path.write_text(migration.text, encoding="utf-8")
    return migration.path
