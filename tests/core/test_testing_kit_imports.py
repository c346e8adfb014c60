"""``assert_imports_only_sdk``: a plugin's own test of how it imports core."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.testing import assert_imports_only_sdk
from portal.testing.imports import core_imports, is_test_code


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


GOOD = {
    "portal-tidy/portal_tidy/__init__.py": "from portal.sdk import PluginInfo, hookimpl\nfrom portal import sdk\n",
    "portal-tidy/portal_tidy/pages.py": "import msgspec\n\nimport portal.sdk\nfrom . import helpers\n",
    "portal-tidy/portal_tidy/helpers.py": "def f():\n    from portal.sdk import fetch\n    return fetch\n",
    "portal-tidy/tests/conftest.py": "from portal.testing import TestMerchant\n",
    "portal-tidy/tests/test_tidy.py": "import portal.testing\nfrom portal.sdk import new_id\n",
    "portal-tidy/.venv/lib/site.py": "import portal.db.engine\n",  # an environment inside the folder: not the plugin's
}

BAD = {
    "portal-messy/portal_messy/__init__.py": (
        "from typing import TYPE_CHECKING\n"
        "from portal.sdk import hookimpl\n"
        "if TYPE_CHECKING:\n"
        "    from portal.platform import Platform\n"
    ),
    "portal-messy/portal_messy/pages.py": "def page():\n    from portal.web.render import render_page\n",
    "portal-messy/portal_messy/kit.py": "from portal.testing import TestMerchant\n",
    "portal-messy/portal_messy/bare.py": "import portal\nfrom portal import ids\n",
    "portal-messy/tests/test_messy.py": "from portal.testing import TestMerchant\nimport portal.events.bus\n",
}


def test_a_package_that_imports_only_the_sdk_passes(tmp_path: Path) -> None:
    root = write(tmp_path, GOOD) / "portal-tidy"
    assert_imports_only_sdk(root)
    assert_imports_only_sdk(root / "portal_tidy")
    assert_imports_only_sdk(str(root / "tests"))
    assert_imports_only_sdk(root / "tests" / "test_tidy.py")


def test_each_import_of_a_core_module_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    root = write(tmp_path, BAD) / "portal-messy"
    with pytest.raises(AssertionError) as failure:
        assert_imports_only_sdk(root)
    message = str(failure.value)
    package, tests = root / "portal_messy", root / "tests"
    for expected in (
        f"{package / '__init__.py'}:4 imports portal.platform",
        f"{package / 'pages.py'}:2 imports portal.web.render",
        f"{package / 'kit.py'}:1 imports portal.testing",
        f"{package / 'bare.py'}:1 imports portal\n",
        f"{package / 'bare.py'}:2 imports portal.ids",
        f"{tests / 'test_messy.py'}:2 imports portal.events.bus",
    ):
        assert expected in message + "\n", message
    assert f"{tests / 'test_messy.py'}:1" not in message  # tests may use the kit
    assert "portal.sdk" in message.splitlines()[0]
    assert len(re.findall(r"\.py:\d+ imports ", message)) == 6


def test_the_plugins_code_may_not_import_the_test_kit(tmp_path: Path) -> None:
    root = write(tmp_path, {"portal_kit/__init__.py": "from portal.testing import assert_tenant_table\n"})
    with pytest.raises(AssertionError, match=r"__init__.py:1 imports portal.testing"):
        assert_imports_only_sdk(root / "portal_kit")


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] in {"portal_tidy", "portal_messy"}]:
            del sys.modules[name]


def test_an_imported_package_is_checked_by_its_folder(on_path: Path) -> None:
    write(on_path, {name.removeprefix("portal-tidy/"): text for name, text in GOOD.items() if "/portal_tidy/" in name})
    write(on_path, {"portal_messy/__init__.py": "", "portal_messy/pages.py": "from portal.db import engine\n"})
    assert_imports_only_sdk(importlib.import_module("portal_tidy"))
    with pytest.raises(AssertionError, match=r"pages.py:1 imports portal.db"):
        assert_imports_only_sdk(importlib.import_module("portal_messy"))


def test_a_missing_path_is_an_error_not_a_pass(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        assert_imports_only_sdk(tmp_path / "nowhere")


def test_what_counts_as_test_code(tmp_path: Path) -> None:
    package = tmp_path / "portal_x"
    assert not is_test_code(package / "pages.py", package)
    assert not is_test_code(package / "testing.py", package)
    assert is_test_code(package / "conftest.py", package)
    assert is_test_code(package / "test_pages.py", package)
    assert is_test_code(package / "pages_test.py", package)
    assert is_test_code(package / "__tests__" / "helpers.py", package)
    assert is_test_code(tmp_path / "tests" / "helpers.py", tmp_path / "tests")


def test_imports_are_read_everywhere_in_a_module(tmp_path: Path) -> None:
    source = tmp_path / "plugin.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nfrom portal.sdk import emit\nif TYPE_CHECKING:\n"
        "    from portal.platform import Platform\ndef f():\n    import portal.db.engine\n    from portal import ids\n"
        "from .portal import x\nimport portalx\n"
    )
    assert core_imports(source) == [
        (2, "portal.sdk"),
        (4, "portal.platform"),
        (6, "portal.db.engine"),
        (7, "portal.ids"),
    ]
