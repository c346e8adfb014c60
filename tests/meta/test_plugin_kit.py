"""``portal plugin new``: what the generator writes, and what it refuses (fast; the install test runs the result)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from portal.cli import main
from portal.plugin_kit import migrations
from portal.plugin_kit.scaffold import ScaffoldError, check_key, importable, scaffold
from portal.testing import assert_imports_only_sdk
from portal.testing.imports import core_imports

RUFF = Path(sys.executable).parent / "ruff"
MYPY = Path(sys.executable).parent / "mypy"
EXAMPLE = Path(__file__).parents[2] / "examples" / "notes"


def test_the_package_has_every_part(tmp_path: Path) -> None:
    folder = scaffold("memo_pad", tmp_path)
    assert folder == tmp_path / "portal-memo_pad"
    files = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
    migration = [name for name in files if name.startswith("portal_memo_pad/migrations/memo_pad_2")]
    assert len(migration) == 1
    assert files - set(migration) == {
        "README.md",
        "pyproject.toml",
        "portal_memo_pad/__init__.py",
        "portal_memo_pad/pages.py",
        "portal_memo_pad/tables.py",
        "portal_memo_pad/piccolo_app.py",
        "portal_memo_pad/migrations/__init__.py",
        "portal_memo_pad/templates/page.html",
        "portal_memo_pad/templates/entry.html",
        "portal_memo_pad/templates/widget.html",
        "tests/conftest.py",
        "tests/test_memo_pad.py",
    }
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["name"] == "portal-memo_pad"
    assert project["project"]["dependencies"] == ["portal-core"]
    assert project["project"]["entry-points"]["portal"] == {"memo_pad": "portal_memo_pad"}
    text = (folder / migration[0]).read_text()
    assert 'tenant_tables=["memo_pad_entry"]' in text
    assert 'app_name="memo_pad"' in text
    pages = (folder / "portal_memo_pad/pages.py").read_text()
    assert 'new_id("memopad")' in pages
    assert "emit_as_customer(" in pages
    assert "__key__" not in "".join(path.read_text() for path in folder.rglob("*") if path.is_file())


def test_the_package_passes_its_own_lint_and_format(tmp_path: Path) -> None:
    folder = scaffold("lintme", tmp_path)
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run([str(RUFF), *command], cwd=folder, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "portal-taken").mkdir()
    (tmp_path / "portal-taken" / "keep.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="exists already"):
        scaffold("taken", tmp_path)
    assert [p.name for p in (tmp_path / "portal-taken").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("Notes", "not a plugin key"),
        ("9notes", "not a plugin key"),
        ("my-notes", "not a plugin key"),
        ("my__notes", "not a plugin key"),
        ("notes_", "not a plugin key"),
        ("class", "not a plugin key"),
        ("x1", "at least two letters"),
        ("api", "reserved"),
        ("cards", "installed already"),
        ("invoices", "installed already"),
    ],
)
def test_a_bad_or_taken_key_is_refused(key: str, why: str) -> None:
    with pytest.raises(ScaffoldError, match=why):
        check_key(key)


def test_the_command_writes_the_package_and_says_what_next(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plugin", "new", "todo", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "portal-todo" / "portal_todo" / "pages.py").is_file()
    assert "uv pip install -e" in result.output
    again = CliRunner().invoke(main, ["plugin", "new", "todo", "--dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "exists already" in again.output


def test_the_notes_example_is_under_150_lines_with_its_tests() -> None:
    """The issue's measure: Python and templates, tests included, blank lines and generated migrations not."""
    files = [p for p in EXAMPLE.rglob("*") if p.suffix in (".py", ".html") and "migrations" not in p.parts]
    counted = {str(p.relative_to(EXAMPLE)): sum(bool(s.strip()) for s in p.read_text().splitlines()) for p in files}
    assert {"portal_notes/__init__.py", "portal_notes/tables.py", "tests/test_notes.py"} <= set(counted)
    assert sum(counted.values()) < 150, counted


async def test_the_notes_examples_migrations_create_what_its_tables_declare() -> None:
    with importable(EXAMPLE, "portal_notes"):
        from portal_notes.piccolo_app import APP_CONFIG

        with pytest.raises(migrations.NoChangesError):
            await migrations.next_migration(APP_CONFIG)


def test_the_new_package_and_the_example_import_core_only_through_the_sdk(tmp_path: Path) -> None:
    for folder in (scaffold("sdkonly", tmp_path), EXAMPLE):
        assert_imports_only_sdk(folder)
        tests = [module for source in sorted((folder / "tests").rglob("*.py")) for _, module in core_imports(source)]
        assert "portal.testing" in tests, folder


def test_the_new_package_and_the_example_type_check_strictly(tmp_path: Path) -> None:
    """Core is typed (``py.typed``), so a plugin's mypy sees the SDK's types, not ``Any``."""
    folder = scaffold("typed", tmp_path)
    for project in (folder, EXAMPLE):
        command = [str(MYPY), "--strict", "--cache-dir", str(tmp_path / "mypy"), "--config-file", "", "."]
        result = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
