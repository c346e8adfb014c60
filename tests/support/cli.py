"""Running the ``portal`` command as its own process against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.distributions import write_distribution

ROOT = Path(__file__).parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any ``PORTAL_*`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(extra)
    return env


def cli_environment(database_url: str, site: Path) -> dict[str, str]:
    """Environment for a ``portal`` process: the database, and the test plugins installed in ``site``."""
    write_distribution(site, "portal-example", {"example": "support.example_plugin"})
    write_distribution(site, "portal-theme-harbor", {"theme-harbor": "support.example_theme"})
    write_distribution(site, "portal-theme-harbor-night", {"theme-harbor-night": "support.child_theme"})
    return clean_env(PORTAL_DATABASE_URL=database_url, PYTHONPATH=os.pathsep.join([str(site), str(ROOT / "tests")]))


def portal(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``portal ARGS`` and capture what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
