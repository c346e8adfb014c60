"""The plugin authors' docs run their examples.

Every ``python`` block of ``docs/writing_plugins.md``, ``docs/sdk.md``, ``docs/plugin_hooks.md``
and ``docs/testing_plugins.md`` is one of:

- a signature (one line ``name(...)`` naming an SDK name or a hook), checked against the code by
  ``test_sdk_docs.py`` (sdk.md) or below (plugin_hooks.md, against the hook specifications);
- a quote of ``examples/notes`` (``<!-- example: PATH -->``), checked by ``test_plugin_docs.py``
  (writing_plugins.md) or below (elsewhere, where a function's body may be shown dedented); the
  example's own tests run in ``test_plugin_kit_install.py``;
- a module of the docs' plugin (``<!-- docs-example: PATH -->``), found verbatim in ``PATH`` under
  ``tests/support/docs_plugin``, whose tests run here in a pytest process of their own;
- a fragment (``<!-- docs-run: FILE::NAME -->``) that the test or handler ``NAME`` of ``FILE``
  (under ``tests/support/docs_plugin``, or this file) runs with the context it needs; blocks of
  other languages (toml, json, console, a folder tree) are marked and run the same way;
- a block of ``docs/testing_plugins.md``, each of which ``tests/core/test_testing_kit_docs.py`` runs;
- one of ``EXCEPTIONS`` below, each with the reason it cannot run.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from portal import hookspecs, sdk
from support.docs_plugin.docs_blocks import docs_block

ROOT = Path(__file__).parents[2]
PAGES = ("writing_plugins.md", "sdk.md", "plugin_hooks.md", "testing_plugins.md")
PLUGIN = ROOT / "tests" / "support" / "docs_plugin"
BLOCK = re.compile(
    r"(?:<!-- (?P<kind>example|docs-example|docs-run): (?P<where>\S+) -->\n)?```python\n(?P<code>.*?)```", re.DOTALL
)
SIGNATURE = re.compile(r"^(?:async )?[A-Za-z_]\w*\(.*\)(?: -> .+)?$")

ELIDED = "elides its SQL or arguments with `...` to show one call's place in a transaction"
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("sdk.md", 'await transaction_lock("notes", tenant.merchant.id, customer.id)'): ELIDED,
    ("sdk.md", "async with savepoint():"): ELIDED,
    ("sdk.md", '"notes.note_archived",'): "emits an event type the notes example does not declare",
}
"""``(page, a line of the block)``: why the block is not run."""


def python_blocks(page: str) -> list[re.Match[str]]:
    return list(BLOCK.finditer((ROOT / "docs" / page).read_text(encoding="utf-8")))


def is_signature(page: str, code: str) -> bool:
    """One line ``name(...)`` where a check compares it with the code: an SDK name, or a hook."""
    if "\n" in code.strip() or not SIGNATURE.match(code.strip()):
        return False
    name = code.strip().removeprefix("async ").split("(")[0]
    return (page == "sdk.md" and name in sdk.__all__) or (page == "plugin_hooks.md" and hasattr(hookspecs, name))


def first_line(code: str) -> str:
    return code.strip().splitlines()[0]


def excepted(page: str, code: str) -> bool:
    return any(page == where and line in code for where, line in EXCEPTIONS)


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_is_checked_quoted_or_run(page: str) -> None:
    unchecked = [
        first_line(block["code"])
        for block in python_blocks(page)
        if not (block["kind"] or is_signature(page, block["code"]) or page == "testing_plugins.md")
        and not excepted(page, block["code"])
    ]
    assert not unchecked, f"docs/{page}: blocks neither checked, quoted nor run (mark them):\n" + "\n".join(unchecked)


def test_the_exceptions_are_still_in_the_docs() -> None:
    for page, line in EXCEPTIONS:
        [block] = [block for block in python_blocks(page) if line in block["code"]]
        assert not block["kind"], f"docs/{page}: a block listed as an exception is marked: {line}"


@pytest.mark.parametrize("page", PAGES)
def test_each_docs_example_is_the_plugins_code_verbatim(page: str) -> None:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    for found in re.finditer(r"<!-- docs-example: (\S+) -->\n```[a-z+]*\n(.*?)```", text, flags=re.DOTALL):
        path = ROOT / found[1]
        assert path.is_relative_to(PLUGIN) and path.is_file(), found[1]
        assert found[2] in path.read_text(encoding="utf-8"), f"docs/{page} shows {found[1]} as it is not:\n{found[2]}"


@pytest.mark.parametrize("page", [page for page in PAGES if page != "writing_plugins.md"])  # that one: test_plugin_docs
def test_each_quote_of_the_notes_example_is_its_code(page: str) -> None:
    """A quote may show a function's body dedented: it is the file's text at some indentation."""
    for block in python_blocks(page):
        if block["kind"] == "example":
            assert block["where"].startswith("examples/notes/"), block["where"]
            source = (ROOT / block["where"]).read_text(encoding="utf-8")
            assert any(textwrap.indent(block["code"], " " * n) in source for n in range(0, 13, 4)), block["code"]


@pytest.mark.parametrize("page", PAGES)
def test_each_docs_run_names_a_test_that_reads_it(page: str) -> None:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    for where in re.findall(r"<!-- docs-run: (\S+) -->\n```", text):  # any language: toml and json too
        path, _, name = where.partition("::")
        source = (ROOT / path).read_text(encoding="utf-8")
        assert (ROOT / path).is_relative_to(PLUGIN) or path == "tests/meta/test_docs_examples.py", where
        assert re.search(rf"def {name}\(", source), where
        assert re.search(rf'\b(docs_block|console)\("{page}", "{name}"\)', source), f"{where} does not run its block"


def test_the_hooks_signatures_are_the_specifications() -> None:
    text = (ROOT / "docs" / "plugin_hooks.md").read_text(encoding="utf-8")
    shown = {m[0]: m[1] for m in re.findall(r"^## (portal_\w+)\s*\n+```python\n(\1\(.*?\).*)\n```", text, re.MULTILINE)}
    assert len(shown) >= 20
    for name, signature in shown.items():
        function = ast.parse(f"def {signature}: ...").body[0]
        assert isinstance(function, ast.FunctionDef)
        assert [a.arg for a in function.args.args] == list(inspect.signature(getattr(hookspecs, name)).parameters), name


async def test_the_docs_plugin_passes_its_tests(portal_server_dsn: str) -> None:
    """Its own pytest run, in a process of its own; this session's event loop keeps running meanwhile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PORTAL_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-c", str(PLUGIN / "pytest.ini"), "-p", "no:randomly",
        "-p", "no:cacheprovider", "-p", "no:xdist", f"--portal-db-url={portal_server_dsn}", "-rA", str(PLUGIN),
        cwd=PLUGIN, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = out.decode(errors="replace")
    assert process.returncode == 0, output
    names = {
        name
        for path in PLUGIN.glob("test_*.py")
        for name in re.findall(r"^(?:async )?def (test_\w+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    }
    assert set(re.findall(r"^PASSED \S+::(test_\w+)", output, flags=re.MULTILINE)) == names, output


def console(page: str, name: str) -> dict[str, str]:
    """Each command (``$ ...``) of a console block and the output shown under it."""
    shown: dict[str, str] = {}
    command = ""
    for line in docs_block(page, name).splitlines():
        if line.startswith("$ "):
            command = line.removeprefix("$ ").split("  #")[0].strip()
            shown[command] = ""
        else:
            shown[command] += line + "\n"
    return shown


def portal(args: list[str], *, cwd: Path) -> str:
    """Run the ``portal`` command line in a process of its own (its commands run event loops of their own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    command = [str(Path(sys.executable).parent / "portal"), *args]
    result = subprocess.run(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_portal_plugin_new_says_what_the_docs_show(tmp_path: Path) -> None:
    shown = console("writing_plugins.md", "test_portal_plugin_new_says_what_the_docs_show")
    output = portal(shlex.split("portal plugin new notes")[1:], cwd=tmp_path)
    assert output == shown["portal plugin new notes"]
    assert "uv pip install -e portal-notes" in shown and "cd portal-notes && pytest" in shown


def test_rewriting_the_migrations_gives_one_that_creates_the_tables(tmp_path: Path) -> None:
    shown = console("writing_plugins.md", "test_rewriting_the_migrations_gives_one_that_creates_the_tables")
    project = tmp_path / "portal-notes"
    shutil.copytree(ROOT / "examples" / "notes", project, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    [remove, write, test] = shown
    assert remove == "rm portal_notes/migrations/notes_2*.py" and test == "pytest"
    for old in project.glob(remove.split()[1]):
        old.unlink()
    output = portal(shlex.split(write)[1:], cwd=project)  # it imports portal_notes from the current folder
    [written] = (project / "portal_notes" / "migrations").glob("notes_2*.py")
    expected = shown[write].replace("/home/you/portal-notes", str(project))
    assert re.sub(r"notes_\d{4}(_\d\d){2}t(\d\d_){3}\d{6}", "notes_ID", output) == re.sub(
        r"notes_\d{4}(_\d\d){2}t(\d\d_){3}\d{6}", "notes_ID", expected
    ), output
    assert written.name in output


def test_the_tree_of_a_new_package_is_what_it_writes(tmp_path: Path) -> None:
    """Every entry the tree shows exists, and every file written is shown (a folder's files by name)."""
    shown: set[str] = set()
    parents: list[str] = []
    for line in docs_block("writing_plugins.md", "test_the_tree_of_a_new_package_is_what_it_writes").splitlines():
        found = re.match(r"^([│ ]*)[├└]── (\S+)\s*(.*)$", line)
        if not found:
            if not parents:
                parents = [line.strip().rstrip("/")]
            continue
        depth = len(found[1]) // 4 + 1
        parents[depth:] = [found[2].rstrip("/")]
        shown.add("/".join(parents))
        if found[2].endswith("/"):
            shown.update("/".join([*parents, name]) for name in re.findall(r"\b([a-z_]+\.html)\b", found[3]))
    portal(["plugin", "new", "notes"], cwd=tmp_path)
    folder = tmp_path / "portal-notes"
    written = {
        path.relative_to(tmp_path).as_posix() for path in folder.rglob("*") if "migrations" not in path.parts[-2:-1]
    }
    assert shown == written, (sorted(shown - written), sorted(written - shown))
