"""The plugin authors' docs say what the code does.

``docs/writing_plugins.md`` quotes ``examples/notes`` (which ``test_plugin_kit_install.py`` runs)
word for word (its ``pyproject.toml`` whole), gives ``render_page``'s real signature, the base
theme's text for a failed widget, and the theme engine's lenient undefined values;
``docs/themes.md`` lists classes that the base theme's stylesheet has, every class the plugin
templates use, and the navigation and widget orders of the first-party plugins as their code
sets them.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from portal.platform import Platform
from portal.sdk import load_settings, render_page

ROOT = Path(__file__).parents[2]
WRITING = (ROOT / "docs" / "writing_plugins.md").read_text(encoding="utf-8")
THEMES = (ROOT / "docs" / "themes.md").read_text(encoding="utf-8")
CSS = (ROOT / "themes" / "base" / "portal_theme_base" / "static" / "portal.css").read_text(encoding="utf-8")
QUOTE = re.compile(r"<!-- example: (?P<path>\S+) -->\n```[a-z+]*\n(?P<code>.*?)```", re.DOTALL)
PLUGIN_TEMPLATES = [
    *(ROOT / "examples" / "notes").rglob("*.html"),
    *(ROOT / "core" / "portal" / "plugin_kit" / "package").rglob("*.html.tmpl"),
]


def _section(text: str, heading: str) -> str:
    return text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]


def test_the_quoted_example_is_the_example() -> None:
    quotes = list(QUOTE.finditer(WRITING))
    assert len(quotes) >= 15
    for quote in quotes:
        source = (ROOT / quote["path"]).read_text(encoding="utf-8")
        assert quote["code"] in source, f"docs/writing_plugins.md quotes {quote['path']} as it is not:\n{quote['code']}"


def test_the_pyproject_is_quoted_whole() -> None:
    [quote] = [quote for quote in QUOTE.finditer(WRITING) if quote["path"] == "examples/notes/pyproject.toml"]
    assert quote["code"] == (ROOT / quote["path"]).read_text(encoding="utf-8")


def test_the_failing_widgets_text_is_the_base_themes() -> None:
    overview = (ROOT / "themes" / "base" / "portal_theme_base" / "templates" / "overview.html").read_text()
    shown = re.search(
        r'<p class="notice[^"]*"><strong[^>]*>\{\{ _\("(.+?)"\) \}\}</strong> \{\{ _\("(.+?)"\) \}\}', overview
    )
    assert shown is not None, "overview.html no longer shows a failed widget's notice as the test expects"
    assert f"**{shown[1]}** {shown[2]}" in " ".join(_section(WRITING, "## An Overview widget").split())


def test_undefined_values_render_empty_as_documented() -> None:
    environment = Platform(load_settings()).themes.environment("base")
    assert environment.from_string("[{{ missing }}][{{ data.nope }}]").render(data={}) == "[][]"
    assert "Undefined values are not strict" in _section(WRITING, "## Templates")


def test_every_file_of_the_example_is_quoted() -> None:
    quoted = {quote["path"] for quote in QUOTE.finditer(WRITING)}
    example = ROOT / "examples" / "notes"
    files = {
        f"examples/notes/{p.relative_to(example).as_posix()}"
        for p in example.rglob("*")
        if p.suffix in (".py", ".html", ".toml") and "migrations" not in p.parts and p.name != "__init__.py"
    }
    assert files - {"examples/notes/portal_notes/__init__.py"} <= quoted | {"examples/notes/portal_notes/__init__.py"}
    assert "examples/notes/portal_notes/__init__.py" in quoted


def test_render_pages_signature_is_the_documented_one() -> None:
    documented = re.search(r"`render_page\((?P<params>[^`]*)\) -> Response\[str\]`", WRITING)
    assert documented is not None
    params = " ".join(documented["params"].split())
    assert params == 'connection, template, *, tenant, title, active_nav="", status_code=200, headers=None, **values'
    names = list(inspect.signature(render_page).parameters)
    assert names == ["connection", "template", "tenant", "title", "active_nav", "status_code", "headers", "values"]
    table = _section(WRITING, "### `render_page`")
    for name in names:
        assert f"| `{'**' if name == 'values' else ''}{name}` |" in table, name


def _documented_classes() -> set[str]:
    classes: set[str] = set()
    for row in _section(THEMES, "## Classes for plugin pages").splitlines():
        if not row.startswith("| `"):
            continue
        first = row.split("|")[1]
        names = re.findall(r"`([a-z_-]+)`", first)
        classes.update(name if not name.startswith("--") else names[0] + name for name in names)
    return classes


def test_the_documented_classes_are_the_base_themes() -> None:
    classes = _documented_classes()
    assert {"field", "field-error", "button", "button--primary", "notice--error", "badge--info"} <= classes
    missing = sorted(name for name in classes if not re.search(rf"\.{re.escape(name)}(?![\w-])", CSS))
    assert not missing, f"docs/themes.md lists classes portal.css does not have: {missing}"


@pytest.mark.parametrize("template", PLUGIN_TEMPLATES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_plugin_templates_use_only_documented_classes(template: Path) -> None:
    used = {name for value in re.findall(r'class="([^"{]*)"', template.read_text()) for name in value.split()}
    assert used <= _documented_classes(), sorted(used - _documented_classes())


def _calls(source: str, name: str) -> list[str]:
    """The text of every ``name(...)`` call in ``source``, parentheses balanced."""
    found = []
    for start in [m.end() for m in re.finditer(rf"\b{name}\(", source)]:
        depth, end = 1, start
        while depth:
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            end += 1
        found.append(source[start : end - 1])
    return found


def _orders(key: str, name: str) -> list[int]:
    source = "".join(p.read_text() for p in (ROOT / "plugins" / key).glob("portal_*/*.py"))
    return [int(found.group(1)) for call in _calls(source, name) if (found := re.search(r"\border=(\d+)", call))]


def test_the_documented_orders_are_the_first_party_plugins() -> None:
    table = _section(THEMES, "### Navigation and widget orders")
    rows = {
        cells[0].split()[0]: cells[1:]
        for row in table.splitlines()
        if row.startswith("| ") and not row.startswith("| item") and not row.startswith("| ---")
        for cells in [[cell.strip() for cell in row.strip("|").split("|")]]
    }
    for key in ("invoices", "subscriptions", "cards"):
        nav, widgets = rows[key]
        assert _orders(key, "NavItem") == [int(nav)], key
        assert _orders(key, "Widget") == [int(n) for n in re.findall(r"\d+", widgets.split("(")[0])], key
    for key in ("merchant_switch", "payment_recovery"):
        assert _calls("".join(p.read_text() for p in (ROOT / "plugins" / key).rglob("*.py")), "NavItem") == []
        assert _calls("".join(p.read_text() for p in (ROOT / "plugins" / key).rglob("*.py")), "Widget") == []
    assert rows["Overview"][0] == "0"
