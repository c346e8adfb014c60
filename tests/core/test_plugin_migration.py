"""``portal plugin migration``: a plugin's next migration from its table classes, row-level security included.

A plugin is written to a temporary folder and installed there as a distribution; the command runs
as its own process, twice (the table, then a column added to its class), and ``portal migrate``
applies both on a scratch database.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import asyncpg

from portal.testing import scratch_database
from support.cli import clean_env, portal
from support.distributions import write_distribution

TABLE = '''
"""The plugin's table."""

from piccolo.columns import ForeignKey, Text, Varchar
from piccolo.table import Table

from portal.sdk import Customer, Iso


class Memo(Table, tablename="memokit_memo"):
    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False)
    customer_id = ForeignKey(references=Customer, null=False)
    body = Text()
'''

PLUGIN = '''
"""A plugin with one table."""

from portal.sdk import PiccoloApp, PluginInfo, hookimpl


@hookimpl
def portal_plugin_info() -> PluginInfo:
    return PluginInfo(key="memokit", title="Memos")


@hookimpl
def portal_piccolo_apps() -> PiccoloApp:
    return PiccoloApp(module="portal_memokit.piccolo_app")
'''

APP = """
from pathlib import Path

from piccolo.conf.apps import AppConfig

from portal_memokit.tables import Memo

APP_CONFIG = AppConfig(
    app_name="memokit",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=[Memo],
    migration_dependencies=["portal.db.piccolo_app"],
)
"""


def write_plugin(site: Path) -> Path:
    package = site / "portal_memokit"
    package.mkdir(parents=True)
    for name, text in {"__init__.py": PLUGIN, "tables.py": TABLE, "piccolo_app.py": APP}.items():
        (package / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    write_distribution(site, "portal-memokit", {"memokit": "portal_memokit"})
    return package


async def test_tables_are_the_source_of_the_migrations(portal_server_dsn: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    package = write_plugin(site)
    env = clean_env(PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))

    first = portal(env, "plugin", "migration", "memokit")
    assert first.returncode == 0, first.stderr
    assert "Row-level security on: memokit_memo." in first.stdout
    created = sorted((package / "migrations").glob("memokit_*.py"))
    assert len(created) == 1
    assert 'tenant_tables=["memokit_memo"]' in created[0].read_text()

    again = portal(env, "plugin", "migration", "memokit")
    assert again.returncode == 0, again.stderr
    assert "No changes" in again.stdout
    assert len(list((package / "migrations").glob("memokit_*.py"))) == 1

    tables = package / "tables.py"
    tables.write_text(tables.read_text() + "    pinned = Boolean(default=False)\n", encoding="utf-8")
    tables.write_text(tables.read_text().replace("import ForeignKey,", "import Boolean, ForeignKey,"))
    second = portal(env, "plugin", "migration", "memokit", "--description", "pinned memos")
    assert second.returncode == 0, second.stderr
    files = sorted((package / "migrations").glob("memokit_*.py"))
    assert len(files) == 2
    text = files[1].read_text()
    assert 'DESCRIPTION = "pinned memos"' in text
    assert "add_column" in text
    assert "tenant_tables=[]" in text

    async with scratch_database(portal_server_dsn, "portal_plugin_mig_") as dsn:
        migrated = portal({**env, "PORTAL_DATABASE_URL": dsn}, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert "memokit: applied 2 migration(s)" in migrated.stdout
        owner = await asyncpg.connect(dsn)
        try:
            column = await owner.fetchrow(
                "SELECT data_type, is_nullable, column_default FROM information_schema.columns "
                "WHERE table_name = 'memokit_memo' AND column_name = 'pinned'"
            )
            security = await owner.fetchrow(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'memokit_memo'"
            )
            policies = await owner.fetch("SELECT policyname FROM pg_policies WHERE tablename = 'memokit_memo'")
            granted = await owner.fetchval("SELECT has_table_privilege('portal_app', 'memokit_memo', 'INSERT')")
        finally:
            await owner.close()
    assert column is not None
    assert (column["data_type"], column["is_nullable"]) == ("boolean", "NO")
    assert tuple(security) == (True, True)
    assert [p["policyname"] for p in policies] == ["tenant_isolation"]
    assert granted is True


def test_an_unknown_plugin_is_refused(tmp_path: Path) -> None:
    result = portal(clean_env(), "plugin", "migration", "nosuchplugin")
    assert result.returncode == 1
    assert "no plugin 'nosuchplugin'" in result.stderr


def test_a_table_created_in_hand_written_sql_is_not_created_twice(tmp_path: Path) -> None:
    site = tmp_path / "site"
    package = write_plugin(site)
    (package / "migrations").mkdir()
    (package / "migrations" / "memokit_2026_01_01t00_00_00_000000.py").write_text(
        'ID = "2026-01-01T00:00:00:000000"\nSQL = "CREATE TABLE memokit_memo (id text)"\n'
        "async def forwards():\n    return None\n"
    )
    env = clean_env(PYTHONPATH=str(site))
    result = portal(env, "plugin", "migration", "memokit")
    assert result.returncode == 1
    assert "hand-written migration creates memokit_memo" in result.stderr


def test_the_next_id_comes_after_every_existing_one(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from portal.plugin_kit.migrations import file_name, next_id

    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert next_id(tmp_path / "none", now) == "2026-12-05T10:00:00:000000"
    (tmp_path / "memo_a.py").write_text("ID = '2030-01-01T00:00:00:000000'\n")  # piccolo's own quoting
    (tmp_path / "memo_b.py").write_text('ID = "2029-01-01T00:00:00:000000"\n')
    assert next_id(tmp_path, now) == "2030-01-01T00:00:01:000000"
    assert next_id(tmp_path, datetime(2031, 1, 1, tzinfo=UTC)) == "2031-01-01T00:00:00:000000"
    assert file_name("memo-kit", "2030-01-01T00:00:01:000000") == "memo_kit_2030_01_01t00_00_01_000000.py"
