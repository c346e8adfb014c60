"""A plugin imports core only through ``portal.sdk`` (and its tests through ``portal.testing``).

:func:`assert_imports_only_sdk` parses every module of a package, a folder or a file (imports
inside functions and ``TYPE_CHECKING`` blocks included) and fails naming the file, the line and
the module of every other ``portal`` import. Test code (``conftest.py``, ``test_*.py``,
``*_test.py``, files under a ``tests``, ``test`` or ``__tests__`` folder) may also import the
test kit; the plugin's own code may not, since the kit is not installed where the plugin runs.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

SDK = "portal.sdk"
KIT = "portal.testing"
TEST_FOLDERS = frozenset({"tests", "test", "__tests__"})
SKIPPED_FOLDERS = frozenset({"__pycache__", "build", "dist", "node_modules", "site-packages"})


def core_imports(source: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every absolute import of ``portal`` or a module under it in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "portal":  # from portal import sdk: the name is a module of core
                found += [(node.lineno, f"portal.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return sorted((line, module) for line, module in found if module == "portal" or module.startswith("portal."))


def is_test_code(source: Path, root: Path) -> bool:
    """True for a test module or a file under a test folder of ``root`` (``root``'s own name counts)."""
    name = source.name
    if name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py"):
        return True
    folders = source.relative_to(root.parent).parts[:-1] if source != root else ()
    return any(folder in TEST_FOLDERS for folder in folders)


def allowed(module: str, *, test_code: bool) -> bool:
    """``portal.sdk`` and what is under it; ``portal.testing`` too for test code."""
    permitted = (SDK, KIT) if test_code else (SDK,)
    return any(module == name or module.startswith(f"{name}.") for name in permitted)


def _sources(root: Path) -> Iterator[Path]:
    """``root`` itself when it is a file, else its ``.py`` files, skipping hidden and build folders."""
    if root.is_file():
        yield root
        return
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".") and name not in SKIPPED_FOLDERS)
        yield from (Path(folder) / name for name in sorted(files) if name.endswith(".py"))


def _root_of(package_or_path: ModuleType | str | os.PathLike[str]) -> Path:
    """The folder of a package, the file of a module, or the path given."""
    if isinstance(package_or_path, ModuleType):
        locations = list(getattr(package_or_path, "__path__", []))
        if locations:
            return Path(locations[0]).resolve()
        if package_or_path.__file__ is None:
            raise ValueError(f"{package_or_path.__name__} has no source file to check")
        return Path(package_or_path.__file__).resolve()
    return Path(package_or_path).resolve()


def wrong_imports(package_or_path: ModuleType | str | os.PathLike[str]) -> list[str]:
    """``file:line imports module`` for each import of core that is not allowed where it is."""
    root = _root_of(package_or_path)
    if not root.exists():
        raise FileNotFoundError(f"nothing to check at {root}")
    wrong = []
    for source in _sources(root):
        test_code = is_test_code(source, root)
        for line, module in core_imports(source):
            if not allowed(module, test_code=test_code):
                wrong.append(f"{source}:{line} imports {module}")
    return wrong


def assert_imports_only_sdk(package_or_path: ModuleType | str | os.PathLike[str]) -> None:
    """Fail naming every import of core other than ``portal.sdk`` (``portal.testing`` too in tests).

    ``package_or_path`` is an imported package or module (``import portal_notes``), or the path of
    a folder or a file (a distribution's folder checks its package and its tests together).
    """
    wrong = wrong_imports(package_or_path)
    checked = _root_of(package_or_path)
    if wrong:
        raise AssertionError(
            f"{checked} imports core outside portal.sdk (tests may also import portal.testing); "
            "use the portal.sdk name instead:\n" + "\n".join(wrong)
        )
