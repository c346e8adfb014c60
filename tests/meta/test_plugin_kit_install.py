"""A plugin from ``portal plugin new`` and the notes example pass their own tests in a fresh environment.

One virtual environment gets ``portal-core[testing]`` and ``portal-theme-base`` from this
checkout (third-party versions pinned to ``uv.lock``, so they come from uv's cache). Its own
``portal plugin new notes2`` writes a package, installed editable as the docs say; the example
``examples/notes`` is installed from its folder. Each package's tests run with that
environment's pytest against this machine's PostgreSQL, with nothing but the test kit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "notes"
TIMEOUT = 300
EXPORT = ("export", "--frozen", "--all-packages", "--all-extras", "--no-emit-workspace", "--no-hashes")


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is not on PATH: the install test makes its environment with it"
    return uv


def _env(**extra: str) -> dict[str, str]:
    """This environment without the workspace's virtual environment or any ``PORTAL_*`` setting."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PORTAL_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(dropped)}, **extra}


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=TIMEOUT
    )
    command = " ".join(map(str, args))
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with core (and its test kit) and the base theme from this checkout."""
    folder = tmp_path_factory.mktemp("plugin-kit")
    uv = _uv()
    pins = folder / "pins.txt"
    _run([uv, *EXPORT, "--no-header", "--no-annotate", "--output-file", pins], cwd=ROOT)
    _run([uv, "venv", "--quiet", "--python", sys.executable, folder / "venv"], cwd=folder)
    core = f"portal-core[testing] @ {(ROOT / 'core').as_uri()}"
    theme = ROOT / "themes" / "base"
    _run([uv, "pip", "install", "--quiet", "--python", folder / "venv", "-c", pins, core, theme], cwd=folder)
    return folder / "venv"


def _pytest(venv: Path, project: Path, server_dsn: str) -> str:
    env = _env(PORTAL_TEST_DATABASE_URL=server_dsn)
    return _run([venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env)


def test_a_new_plugin_passes_its_own_tests(venv: Path, tmp_path: Path, portal_server_dsn: str) -> None:
    _run([venv / "bin" / "portal", "plugin", "new", "notes2", "--dir", tmp_path], cwd=tmp_path)
    project = tmp_path / "portal-notes2"
    _run([_uv(), "pip", "install", "--quiet", "--python", venv, "-e", project], cwd=tmp_path)
    output = _pytest(venv, project, portal_server_dsn)
    assert "5 passed" in output, output
    assert "skipped" not in output, output


def test_the_notes_example_passes_its_own_tests(venv: Path, tmp_path: Path, portal_server_dsn: str) -> None:
    project = tmp_path / "notes"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info"))
    _run([_uv(), "pip", "install", "--quiet", "--python", venv, project], cwd=tmp_path)
    output = _pytest(venv, project, portal_server_dsn)
    assert "4 passed" in output, output
    assert "skipped" not in output, output
