"""``portal plugin new``: write a plugin package to start from, with its first migration.

The package's files are the ``.tmpl`` files of ``plugin_kit/package``, with ``__key__``,
``__title__`` and ``__prefix__`` replaced (in names too); ``__tests__`` becomes ``tests`` (core's
wheel carries no folder named ``tests``). Its first migration is written by
:mod:`portal.plugin_kit.migrations` from the package's own ``tables.py``, as later ones will be.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import keyword
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path

import black

from portal.plugin_kit import migrations
from portal.plugins.manager import ENTRY_POINT_GROUP

PACKAGE = Path(__file__).resolve().parent / "package"
"""The package's files, each ending in ``.tmpl``."""
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,29}$")
RESERVED = frozenset({"portal", "sdk", "testing", "api", "static", "login", "logout", "theme", "plugin", "plugins"})
"""Keys that name core's own modules or paths, not a plugin's."""


class ScaffoldError(Exception):
    """The package cannot be written; the message says why."""


def check_key(key: str) -> None:
    """Refuse a key that is not a lower-case identifier, is reserved, or is an installed plugin's."""
    if not KEY_PATTERN.match(key) or keyword.iskeyword(key) or key.endswith("_") or "__" in key:
        raise ScaffoldError(
            f"{key!r} is not a plugin key: 2 to 30 lower-case letters, digits and single underscores, "
            "starting with a letter (it becomes the module portal_KEY, the URL /KEY and the table prefix)"
        )
    if len(re.sub("[^a-z]", "", key)) < 2:
        raise ScaffoldError(f"{key!r} needs at least two letters (they prefix the ids of its rows)")
    if key in RESERVED:
        raise ScaffoldError(f"{key!r} is reserved by the portal; choose another key")
    installed = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if key in installed:
        raise ScaffoldError(f"a plugin {key!r} is installed already ({installed[key]}); choose another key")


def _values(key: str) -> dict[str, str]:
    return {
        "__key__": key,
        "__title__": key.replace("_", " ").capitalize(),
        "__prefix__": re.sub("[^a-z]", "", key)[:8],
        "__tests__": "tests",
    }


def _fill(text: str, values: dict[str, str]) -> str:
    for token, value in values.items():
        text = text.replace(token, value)
    return text


def _files(values: dict[str, str]) -> Iterator[tuple[Path, str]]:
    """Each file of the package: its path inside the package folder and its text."""
    for source in sorted(PACKAGE.rglob("*.tmpl")):
        relative = Path(_fill(str(source.relative_to(PACKAGE)), values).removesuffix(".tmpl"))
        text = _fill(source.read_text(encoding="utf-8"), values)
        if relative.suffix == ".py":
            text = black.format_str(text, mode=black.Mode(line_length=migrations.LINE_LENGTH))
        yield relative, text


@contextmanager
def importable(folder: Path, module: str) -> Iterator[None]:
    """Import from ``folder`` for the block; forget ``module`` and its submodules afterwards."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()


def scaffold(key: str, directory: Path, *, now: dt.datetime | None = None) -> Path:
    """Write the package ``portal-<key>`` in ``directory``; return its folder. Refuses an existing folder."""
    check_key(key)
    folder = directory / f"portal-{key}"
    if folder.exists():
        raise ScaffoldError(f"{folder} exists already; remove it or choose another --dir")
    values = _values(key)
    for relative, text in _files(values):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    module = f"portal_{key}"
    with importable(folder, module):
        config = getattr(importlib.import_module(f"{module}.piccolo_app"), "APP_CONFIG")  # noqa: B009
        first = asyncio.run(migrations.next_migration(config, description=f"create {key}_entry", now=now))
    migrations.write(first)
    return folder
