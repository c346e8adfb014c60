"""``docs/sdk.md`` documents every name of ``portal.sdk``, with the parameters the code has.

Each name of ``portal.sdk.__all__`` has exactly one ``## name`` or ``### name`` section, and every
``###`` section is a name the SDK exports. A signature shown in a section (the first ``python``
block, or else the first inline code, that starts with ``name(``) must list the parameters of
the callable, by name and kind, in order; every function of the SDK shows one.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from portal import sdk

DOC = Path(__file__).parents[2] / "docs" / "sdk.md"
HEADING = re.compile(r"^(#{2,3}) (.+?)\s*$", re.MULTILINE)
KINDS = {
    "posonlyargs": "POSITIONAL_ONLY",
    "args": "POSITIONAL_OR_KEYWORD",
    "vararg": "VAR_POSITIONAL",
    "kwonlyargs": "KEYWORD_ONLY",
    "kwarg": "VAR_KEYWORD",
}


def sections(text: str) -> dict[str, list[str]]:
    """The text of each ``##``/``###`` section, by heading (a list, to see a heading used twice)."""
    found: dict[str, list[str]] = {}
    matches = list(HEADING.finditer(text))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        found.setdefault(match.group(2).strip("`"), []).append(text[match.end() : end])
    return found


def shown_signature(name: str, section: str) -> str | None:
    """The signature the section shows for ``name``, if any."""
    start = re.compile(rf"^(?:async )?{re.escape(name)}\(")
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL):
        if start.match(block.strip()):
            return block.strip()
    for code in re.findall(r"`([^`\n]+)`", section):
        if start.match(code):
            return code
    return None


def documented_parameters(signature: str) -> list[tuple[str, str]]:
    """``(name, kind)`` of each parameter of a signature written as in the docs."""
    text = signature.removeprefix("async ")
    function = ast.parse(f"def {text}: ...").body[0]
    assert isinstance(function, ast.FunctionDef), signature
    arguments = function.args
    found: list[tuple[str, str]] = []
    for field, kind in KINDS.items():
        value = getattr(arguments, field)
        for argument in value if isinstance(value, list) else [value] if value else []:
            found.append((argument.arg, kind))
    order = list(KINDS.values())
    return sorted(found, key=lambda item: order.index(item[1]))  # ast lists kinds apart; keep each kind's order


def code_parameters(value: Any) -> list[tuple[str, str]]:
    """``(name, kind)`` of each parameter of the callable."""
    return [(parameter.name, parameter.kind.name) for parameter in inspect.signature(value).parameters.values()]


def names_match(signature: str, value: Any) -> None:
    """The parameters shown are the code's: names and kinds, or the fields' names in order for a
    Struct whose signature cannot be built here (its annotations name types imported only for checking)."""
    shown = documented_parameters(signature)
    try:
        expected = code_parameters(value)
    except NameError:
        assert isinstance(value, type) and issubclass(value, msgspec.Struct), signature
        assert [name for name, _ in shown] == list(value.__struct_fields__), f"docs/sdk.md: {signature}"
        return
    assert shown == expected, f"docs/sdk.md: {signature}"


def exported() -> list[str]:
    return list(getattr(sdk, "__all__", [name for name in vars(sdk) if not name.startswith("_")]))


SECTIONS = sections(DOC.read_text(encoding="utf-8"))


def test_the_sdk_exports_names() -> None:
    assert len(exported()) > 100
    assert {"emit", "render_page", "new_id", "transaction_lock"} <= set(exported())


@pytest.mark.parametrize("name", exported())
def test_each_exported_name_has_one_section(name: str) -> None:
    assert name in SECTIONS, f"docs/sdk.md has no '### {name}' section"
    assert len(SECTIONS[name]) == 1, f"docs/sdk.md has {len(SECTIONS[name])} sections for {name}"


def test_each_name_section_is_an_exported_name() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = {match.group(2).strip("`") for match in HEADING.finditer(text) if match.group(1) == "###"}
    assert names - set(exported()) == set(), "sections for names portal.sdk does not export"


@pytest.mark.parametrize("name", exported())
def test_a_shown_signature_matches_the_code(name: str) -> None:
    value = getattr(sdk, name)
    section = SECTIONS.get(name, [""])[0]
    signature = shown_signature(name, section)
    if signature is None:
        assert not inspect.isfunction(inspect.unwrap(value)), f"docs/sdk.md shows no signature for {name}()"
        return
    names_match(signature, value)


def test_the_check_sees_a_wrong_signature() -> None:
    assert documented_parameters("fetch(sql: str, *args: Any) -> list") == code_parameters(sdk.fetch)
    assert documented_parameters("fetch(query: str, *args: Any)") != code_parameters(sdk.fetch)
    assert documented_parameters("async emit_as_customer(request, event_type, payload, target=None)") != (
        code_parameters(sdk.emit_as_customer)
    )
    assert documented_parameters("NavItem(*, label, href, order=100, key='')") == code_parameters(sdk.NavItem)
    assert documented_parameters("NavItem(*, label, href)") != code_parameters(sdk.NavItem)
    assert shown_signature("emit", "```python\nasync emit(merchant)\n```") == "async emit(merchant)"
    assert shown_signature("emit", "`emit_as_customer(request)`") is None
    names_match("Widget(*, key, title, template, load=None, order=100)", sdk.Widget)
    with pytest.raises(AssertionError):
        names_match("Widget(*, key, title, template, order=100)", sdk.Widget)


AUTHOR_DOCS = ("sdk.md", "plugin_hooks.md", "testing_plugins.md")
CORE_PATH = re.compile(r"\bportal\.(?!sdk\b|testing\b|localhost\b|css\b|js\b)[a-z_]+(?:\.[a-z_]+)*")
PICCOLO_APP_NAME = "portal.db.piccolo_app"  # a plugin's APP_CONFIG names core's piccolo app; nothing imports it


@pytest.mark.parametrize("page", AUTHOR_DOCS)
def test_plugin_authors_docs_name_only_sdk_and_kit_modules(page: str) -> None:
    text = (DOC.parent / page).read_text(encoding="utf-8")
    lines = [
        f"{page}:{number}: {match.group(0)}"
        for number, line in enumerate(text.splitlines(), 1)
        for match in CORE_PATH.finditer(line)
        if match.group(0) != PICCOLO_APP_NAME and not line[: match.start()].endswith(" imports ")  # a failure quoted
    ]
    assert not lines, "name the portal.sdk (or portal.testing) name instead:\n" + "\n".join(lines)
    assert "core/portal/" not in text
