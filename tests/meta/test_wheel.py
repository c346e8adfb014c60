"""portal-core installed from its wheel, outside the workspace, migrates and tests a plugin.

The test builds the ``portal-core`` and ``portal-theme-base`` wheels from this checkout, turns
``tests/support/example_plugin`` (as it is at test time) into a distribution of its own,
``portal-example`` with the import package ``portal_example``, and installs the three wheels with
core's ``testing`` extra into a fresh virtual environment. From that environment it runs
``portal migrate`` against a scratch database (core's migrations come from the wheel, the
plugin's after them) and a small test file written for the plugin with nothing but
``portal.testing``'s fixtures. Third-party dependencies are pinned to ``uv.lock`` so the install
comes from uv's cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from portal.testing import scratch_database

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "tests" / "support" / "example_plugin"
TIMEOUT = 300
EXPORT = ("export", "--frozen", "--all-packages", "--all-groups", "--all-extras", "--no-emit-workspace", "--no-hashes")
"""``uv export``: every locked third-party version as a plain pin, used as constraints."""

PYPROJECT = """\
[project]
name = "portal-example"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["portal-core"]

[project.entry-points.portal]
example = "portal_example"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/portal_example"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "session"
asyncio_default_test_loop_scope = "session"
addopts = "-ra --strict-markers"
"""

CONFTEST = """\
pytest_plugins = ["portal.testing"]
"""

PLUGIN_TESTS = '''\
"""The example plugin's tests, against portal-core installed from its wheel."""

from pathlib import Path

import asyncpg

import portal
import portal_example
from portal.db.piccolo_app import core_migrations_path
from portal.testing import apply_tenants

TENANTS = """
[[isos]]
slug = "wheel-iso"
name = "Wheel ISO"

[[isos.merchants]]
slug = "wheel-on"
name = "Plugin on"
[isos.merchants.plugins.example]
settings = { greeting = "Howdy" }
[[isos.merchants.customers]]
email = "jane@example.com"
name = "Jane Cooper"

[[isos.merchants]]
slug = "wheel-off"
name = "Plugin off"
[[isos.merchants.customers]]
email = "jane@example.com"
name = "Jane Cooper"
"""


def test_core_and_plugin_come_from_the_environment():
    for path in (Path(portal.__file__), Path(portal_example.__file__), core_migrations_path()):
        assert "site-packages" in path.parts, path
    assert sorted(core_migrations_path().glob("portal_*.py"))


async def test_plugin_page(portal_platform, portal_client, portal_sign_in, tmp_path):
    await apply_tenants(portal_platform, TENANTS, tmp_path)
    on = portal_client("wheel-on.portal.localhost")
    await portal_sign_in(on, "jane@example.com")
    page = await on.get("/example")
    assert page.status_code == 200, page.text
    assert "Howdy, Jane Cooper" in page.text
    assert "example-vars-for-example/page.html" in page.text
    off = portal_client("wheel-off.portal.localhost")
    await portal_sign_in(off, "jane@example.com")
    assert (await off.get("/example")).status_code == 404


async def test_plugin_table(portal_platform, portal_database):
    connection = await asyncpg.connect(portal_database)
    try:
        assert await connection.fetchval("SELECT to_regclass('example_note')::text") == "example_note"
        apps = {row["app_name"] for row in await connection.fetch("SELECT app_name FROM migration")}
    finally:
        await connection.close()
    assert {"portal", "example"} <= apps
'''


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is not on PATH: the wheel test builds and installs with it"
    return uv


def _env(**extra: str) -> dict[str, str]:
    """This environment without the workspace's virtual environment or any ``PORTAL_*`` setting."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PORTAL_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(extra)
    return env


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env if env is not None else _env(), capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _plugin_project(folder: Path) -> Path:
    """``tests/support/example_plugin`` as the source of a distribution of its own."""
    package = folder / "src" / "portal_example"
    shutil.copytree(EXAMPLE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for source in package.rglob("*.py"):
        text = re.sub(r"\bsupport\.example_plugin\b", "portal_example", source.read_text(encoding="utf-8"))
        stray = re.search(r"^\s*(from|import) support\b.*$", text, re.MULTILINE)
        assert stray is None, f"{source.relative_to(folder)} still imports the test tree: {stray.group(0)!r}"
        source.write_text(text, encoding="utf-8")
    (folder / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (folder / "tests").mkdir()
    (folder / "tests" / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (folder / "tests" / "test_example.py").write_text(PLUGIN_TESTS, encoding="utf-8")
    return folder


def _source_files(package: str) -> set[str]:
    """Files of the package folder ``package`` a wheel must carry: tracked or new, not ignored by git.

    Returned as paths inside the wheel (relative to the distribution's folder).
    """
    git = shutil.which("git")
    assert git, "git is not on PATH: the wheel test lists the packages' files with it"
    listed = _run([git, "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", package], cwd=ROOT)
    return {
        Path(name).relative_to(Path(package).parent).as_posix()
        for name in listed.split("\0")
        if name and (ROOT / name).is_file() and not name.endswith(".pyc")
    }


def _wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest_asyncio.fixture(loop_scope="session")
async def migrate_database(portal_server_dsn: str) -> AsyncIterator[str]:
    """An empty database for ``portal migrate``; dropped afterwards."""
    async with scratch_database(portal_server_dsn, "portal_wheel_") as dsn:
        yield dsn


def test_wheel_migrates_and_runs_a_plugins_tests(tmp_path: Path, portal_server_dsn: str, migrate_database: str) -> None:
    uv = _uv()
    wheels = tmp_path / "wheels"
    _run([uv, "build", "--wheel", "--out-dir", str(wheels), "core"], cwd=ROOT)
    _run([uv, "build", "--wheel", "--out-dir", str(wheels), "themes/base"], cwd=ROOT)
    (core_wheel,) = wheels.glob("portal_core-*.whl")
    (theme_wheel,) = wheels.glob("portal_theme_base-*.whl")

    names = _wheel_files(core_wheel)
    migrations = sorted(n for n in names if re.fullmatch(r"portal/migrations/portal_[^/]+\.py", n))
    assert migrations, f"{core_wheel.name} carries no portal/migrations/*.py"
    assert len(migrations) == len(list((ROOT / "core" / "portal" / "migrations").glob("portal_*.py")))
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n], "the wheel carries tests"
    for wheel, package in ((core_wheel, "core/portal"), (theme_wheel, "themes/base/portal_theme_base")):
        missing = _source_files(package) - _wheel_files(wheel)
        assert not missing, f"{wheel.name} lacks files of {package}: {sorted(missing)}"

    project = _plugin_project(tmp_path / "portal-example")
    _run([uv, "build", "--wheel", "--out-dir", str(wheels), str(project)], cwd=ROOT)
    (plugin_wheel,) = wheels.glob("portal_example-*.whl")
    plugin_migrations = sorted(p.name for p in (project / "src" / "portal_example" / "migrations").glob("*.py"))
    plugin_migrations = [name for name in plugin_migrations if name != "__init__.py"]
    plugin_files = {p.relative_to(project / "src").as_posix() for p in (project / "src").rglob("*") if p.is_file()}
    assert plugin_files <= _wheel_files(plugin_wheel), "the plugin's wheel lacks its migrations or templates"

    pins = tmp_path / "pins.txt"
    _run(
        [uv, *EXPORT, "--no-header", "--no-annotate", "--output-file", str(pins)],
        cwd=ROOT,
    )
    requirements = [f"portal-core[testing] @ {core_wheel.as_uri()}", str(theme_wheel), str(plugin_wheel)]
    venv = tmp_path / "venv"
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "--constraint", str(pins), *requirements],
        cwd=tmp_path,
    )

    data = tmp_path / "data"
    migrated = _run(
        [str(venv / "bin" / "portal"), "migrate"],
        cwd=tmp_path,
        env=_env(PORTAL_DATABASE_URL=migrate_database, PORTAL_DATA_DIR=str(data)),
    )
    assert re.search(rf"^portal: applied {len(migrations)} migration\(s\)", migrated, re.MULTILINE), migrated
    assert re.search(rf"^example: applied {len(plugin_migrations)} migration\(s\)", migrated, re.MULTILINE), migrated

    tested = _run(
        [str(venv / "bin" / "pytest"), "-p", "no:cacheprovider", "-q"],
        cwd=project,
        env=_env(PORTAL_TEST_DATABASE_URL=portal_server_dsn, PORTAL_DATA_DIR=str(data)),
    )
    assert re.search(r"\b3 passed\b", tested), tested
