"""The ``portal`` command line, run as a separate process against the test database."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from portal.db.engine import with_database
from portal.platform import Platform
from portal.testing import scratch_database
from support.cli import cli_environment, portal


@pytest.fixture
def cli_env(portal_platform: Platform, tmp_path: Path) -> dict[str, str]:
    """Environment for a ``portal`` process: the test database and the example plugin installed."""
    return cli_environment(str(portal_platform.settings.database_url), tmp_path / "site")


def test_migrate_again_has_nothing_to_do(cli_env: dict[str, str]) -> None:
    result = portal(cli_env, "migrate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Nothing to migrate."


async def test_dry_run_of_the_demo_tenants(portal_server_dsn: str, tmp_path: Path, snapshot) -> None:
    """On a database of its own: the test database may hold the demo tenants already (other tests apply them)."""
    async with scratch_database(portal_server_dsn, "portal_dry_run_") as fresh:
        env = cli_environment(fresh, tmp_path / "site")
        migrated = portal(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        result = portal(env, "tenants", "apply", "tenants/demo.toml", "--dry-run")
        assert result.returncode == 0, result.stderr
        assert result.stdout == snapshot
        again = portal(env, "tenants", "apply", "tenants/demo.toml", "--dry-run")
        assert again.stdout == result.stdout  # nothing was written by the first dry run


def test_invalid_tenant_file_exits_non_zero_with_a_clear_message(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[isos]]\nslug = "Bad Slug"\nname = "x"\n', encoding="utf-8")
    result = portal(cli_env, "tenants", "apply", str(bad))
    assert result.returncode == 1
    assert f"Error: {bad}: isos[0].slug: Expected `str` matching" in result.stderr
    assert "Traceback" not in result.stderr


def test_plugins_list_shows_what_is_installed_and_on(cli_env: dict[str, str], shared_tenants: Platform) -> None:
    everything = portal(cli_env, "plugins", "list")
    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    assert any(line.startswith("plugin  example") and "Example" in line for line in lines)
    assert any(line.startswith("theme   base") for line in lines)
    assert any(line.startswith("theme   harbor ") and "(on base)" in line for line in lines)
    on = portal(cli_env, "plugins", "list", "--merchant", "t-greenfield")
    off = portal(cli_env, "plugins", "list", "--merchant", "t-pinnacle")
    state = {line.split()[1]: line.split()[-1] for line in on.stdout.splitlines() if line.startswith("plugin")}
    assert state["example"] == "on" and state["cards"] == "on"
    state = {line.split()[1]: line.split()[-1] for line in off.stdout.splitlines() if line.startswith("plugin")}
    assert state["example"] == "off" and state["cards"] == "on"
    missing = portal(cli_env, "plugins", "list", "--merchant", "nope")
    assert missing.returncode == 1 and "no merchant with slug 'nope'" in missing.stderr


def test_load_plugins_restriction_reaches_the_cli(cli_env: dict[str, str]) -> None:
    result = portal({**cli_env, "PORTAL_LOAD_PLUGINS": ""}, "plugins", "list")
    assert result.returncode == 0, result.stderr
    assert "plugin  example" not in result.stdout and "theme   base" in result.stdout


async def test_commands_refuse_an_unmigrated_database(cli_env: dict[str, str], portal_server_dsn: str) -> None:
    name = f"portal_empty_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(portal_server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**cli_env, "PORTAL_DATABASE_URL": with_database(portal_server_dsn, name)}
        result = portal(env, "tenants", "apply", "tenants/demo.toml")
        assert result.returncode == 1
        assert "run `portal migrate`" in result.stderr and "Traceback" not in result.stderr
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def test_invalid_setting_stops_start_up(cli_env: dict[str, str]) -> None:
    result = portal({**cli_env, "PORTAL_PORT": "eighty"}, "serve")
    assert result.returncode == 1
    assert "Error: PORTAL_PORT: Expected `int`" in result.stderr


def test_plugins_add_commands(cli_env: dict[str, str]) -> None:
    result = portal(cli_env, "example-hello", "Jane")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from the example plugin, Jane!\n"
    assert "example-hello" in portal(cli_env, "--help").stdout


async def test_migrate_needs_createrole_not_superuser(cli_env: dict[str, str], portal_server_dsn: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    role, name = f"portal_owner_{suffix}", f"portal_owned_{suffix}"
    admin = await asyncpg.connect(portal_server_dsn)
    await admin.execute(f"CREATE ROLE {role} LOGIN CREATEROLE NOSUPERUSER")
    await admin.execute(f'CREATE DATABASE "{name}" OWNER {role}')
    # On PostgreSQL 16+ only a role's creator (or a superuser) may grant it; the roles already
    # exist in this cluster, so the DBA step from docs/operations.md is needed here.
    await admin.execute(f"GRANT portal_resolver TO {role}")
    database = await asyncpg.connect(with_database(portal_server_dsn, name))
    await database.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
    await database.close()
    try:
        from portal.db.engine import with_user

        env = {**cli_env, "PORTAL_DATABASE_URL": with_user(with_database(portal_server_dsn, name), role, None)}
        migrated = portal(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        applied = portal(env, "tenants", "apply", "tenants/demo.toml")
        assert applied.returncode == 0, applied.stderr
        changes = applied.stdout.splitlines()
        assert changes[-1] == f"{len(changes) - 1} change(s).", applied.stdout
        assert "create merchant greenfield" in changes and "create customer northwind:jane@globalco.com" in changes
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


def test_operators_mint_links_and_keys(cli_env: dict[str, str], shared_tenants: Platform) -> None:
    import re

    link = portal(cli_env, "links", "create", "--merchant", "t-pinnacle", "--email", "JANE@globalco.com")
    assert link.returncode == 0, link.stderr
    assert re.match(
        r"https://t-pinnacle\.portal\.localhost/access/pt1\.[\w.-]+\n\(link pl_\w{26}, expires ", link.stdout
    )
    unknown = portal(cli_env, "links", "create", "--merchant", "t-pinnacle", "--email", "who@example.com")
    assert unknown.returncode == 1 and "has no customer 'who@example.com'" in unknown.stderr

    merchant_key = portal(cli_env, "api-keys", "create", "--merchant", "t-pinnacle", "--scope", "customers:read")
    assert merchant_key.returncode == 0, merchant_key.stderr
    assert re.search(r"^key:    sk_[\w-]{43}$", merchant_key.stdout, re.MULTILINE)
    assert "scopes: customers:read" in merchant_key.stdout
    iso_key = portal(cli_env, "api-keys", "create", "--iso", "t-harbor")
    assert re.search(r"^key:    isk_[\w-]{43}$", iso_key.stdout, re.MULTILINE)
    bad_scope = portal(cli_env, "api-keys", "create", "--iso", "t-harbor", "--scope", "everything")
    assert bad_scope.returncode == 1 and "unknown scopes" in bad_scope.stderr

    created = portal(cli_env, "signing-keys", "create", "--merchant", "t-pinnacle", "--retire-others-in", "24")
    assert created.returncode == 0, created.stderr
    kid = re.search(r"^kid:      (lk_\w{26})$", created.stdout, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert re.search(r"^secret:   lsk_[\w-]{43}$", created.stdout, re.MULTILINE)
    assert re.search(r"^iso:      iso_\w{26}\nmerchant: mer_\w{26}$", created.stdout, re.MULTILINE)
    listed = portal(cli_env, "signing-keys", "list", "--merchant", "t-pinnacle")
    assert listed.stdout.splitlines()[0].startswith(f"{kid}  primary")
    assert "lsk_" not in listed.stdout
    retired = portal(cli_env, "signing-keys", "retire", "--merchant", "t-pinnacle", kid)
    assert retired.returncode == 0 and retired.stdout == f"retired {kid}\n"


def test_operators_list_and_revoke_api_keys(cli_env: dict[str, str], shared_tenants: Platform) -> None:
    import re

    created = portal(cli_env, "api-keys", "create", "--merchant", "t-apex", "--name", "billing backend")
    key_id = re.search(r"^id:     (key_\w{26})$", created.stdout, re.MULTILINE).group(1)  # type: ignore[union-attr]
    secret = re.search(r"^key:    (sk_[\w-]+)$", created.stdout, re.MULTILINE).group(1)  # type: ignore[union-attr]
    listed = portal(cli_env, "api-keys", "list", "--merchant", "t-apex")
    line = next(line for line in listed.stdout.splitlines() if line.startswith(key_id))
    assert f"…{secret[-4:]}" in line and "live" in line and "billing backend" in line
    assert secret not in listed.stdout
    elsewhere = portal(cli_env, "api-keys", "revoke", "--merchant", "t-pinnacle", key_id)
    assert elsewhere.returncode == 1 and "no live API key" in elsewhere.stderr
    revoked = portal(cli_env, "api-keys", "revoke", "--merchant", "t-apex", key_id)
    assert revoked.returncode == 0 and revoked.stdout == f"revoked {key_id}\n"
    again = portal(cli_env, "api-keys", "list", "--merchant", "t-apex")
    assert "revoked" in next(line for line in again.stdout.splitlines() if line.startswith(key_id))
    iso_keys = portal(cli_env, "api-keys", "list", "--iso", "t-harbor")
    assert iso_keys.returncode == 0 and key_id not in iso_keys.stdout


def test_every_database_command_takes_data_dir() -> None:
    import click

    from portal.cli import main

    def commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
        found: list[tuple[str, click.Command]] = []
        for name, command in sorted(group.commands.items()):
            if isinstance(command, click.Group):
                found += commands(command, f"{prefix}{name} ")
            else:
                found.append((prefix + name, command))
        return found

    listed = dict(commands(main, ""))
    assert {"migrate", "demo", "serve", "worker", "links create", "tenants apply", "audit verify"} <= set(listed)
    without = [
        name for name, command in listed.items() if "--data-dir" not in {o for p in command.params for o in p.opts}
    ]
    assert without == []


def test_an_empty_data_folder_is_refused_with_directions(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}  # no database URL: embedded
    empty = tmp_path / "elsewhere"
    for where in ([], ["--data-dir", str(empty)]):
        result = subprocess.run(
            [sys.executable, "-m", "portal.cli", "links", "create", "--merchant", "greenfield",
             "--email", "jane@globalco.com", *where],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1, result.stdout + result.stderr
        message = result.stderr
        folder = empty if where else tmp_path / ".portal"
        assert f"no embedded database in {folder}" in message and "PORTAL_DATABASE_URL" in message
        assert "--data-dir" in message and "portal demo" in message and "portal migrate" in message
        assert "Traceback" not in message
        assert not folder.exists(), "the command created no data folder"
