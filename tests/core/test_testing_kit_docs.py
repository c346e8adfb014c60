"""The examples of docs/testing_plugins.md, run as written in a package with no pytest settings.

Every ``python`` block of the page is either a ``conftest.py`` (its first line says so) or tests;
they are written into a package of their own, beside the one module the conftest example imports,
and pytest runs them in a subprocess (as a plugin's own test suite runs) with the kit found
through its entry point. Every test the page defines must pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "testing_plugins.md"

NOTES_PLUGIN = '''
"""The smallest plugin: what the docs' conftest example registers."""

from portal.sdk import PluginInfo, hookimpl


@hookimpl
def portal_plugin_info() -> PluginInfo:
    return PluginInfo(key="notes", title="Notes")
'''


def blocks() -> tuple[list[str], list[str]]:
    """``(conftest blocks, test blocks)`` of the page."""
    found = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    conftests = [block for block in found if block.startswith("# conftest.py\n")]
    return conftests, [block for block in found if block not in conftests]


def test_every_example_is_a_conftest_or_tests() -> None:
    conftests, tests = blocks()
    assert len(conftests) == 1
    assert all(re.search(r"^(async )?def test_", block, flags=re.MULTILINE) for block in tests), tests
    sections = re.findall(r"^## (.+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert len(tests) >= 12 and len(sections) >= 12


def test_the_examples_pass_in_a_package_without_pytest_settings(tmp_path: Path, portal_server_dsn: str) -> None:
    conftests, tests = blocks()
    package = tmp_path / "docs_examples"
    package.mkdir()
    (package / "notes_plugin.py").write_text(NOTES_PLUGIN, encoding="utf-8")
    (package / "conftest.py").write_text(conftests[0], encoding="utf-8")
    for number, block in enumerate(tests, 1):
        (package / f"test_example_{number:02}.py").write_text(block, encoding="utf-8")
    names = [name for block in tests for name in re.findall(r"^(?:async )?def (test_\w+)", block, flags=re.MULTILINE)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PORTAL_TEST_"))}
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist",
            "-W", "error::pytest.PytestDeprecationWarning", f"--portal-db-url={portal_server_dsn}", "-rA",
        ],
        cwd=package, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = set(re.findall(r"^PASSED \S+::(test_\w+)", output, flags=re.MULTILINE))
    assert passed == set(names) and len(names) == len(set(names)), output
