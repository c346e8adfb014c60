"""``portal themes check``: the shipped themes pass; a broken theme fails, naming template and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.config import load_settings
from portal.i18n.catalogs import Catalogs, theme_locale
from portal.platform import Platform
from portal.plugin import ThemeSpec
from portal.tenancy.colours import contrast as contrast_ratio
from portal.theming.check import check_theme, palettes, print_report
from portal.theming.engine import ThemeRegistry
from portal.theming.filters import TEMPLATE_FILTERS
from support.cli import ROOT, clean_env


@pytest.fixture(scope="module")
def shipped() -> Platform:
    """The platform as installed: first-party plugins and themes, no test plugins."""
    return Platform(load_settings())


def _registry_with(shipped: Platform, spec: ThemeSpec) -> tuple[ThemeRegistry, Catalogs]:
    themes = {**shipped.registry.themes, spec.key: spec}
    registry = ThemeRegistry(themes, shipped.themes.plugin_templates, filters=TEMPLATE_FILTERS)
    chains = {key: [theme_locale(s) for s in registry.chain(key)] for key in themes}
    return registry, Catalogs([], chains)


@pytest.mark.parametrize("theme", ["base", "harbor", "summit"])
def test_the_shipped_themes_pass(shipped: Platform, theme: str) -> None:
    report = check_theme(shipped.themes, shipped.catalogs, theme)
    assert [problem.line() for problem in report.problems] == []
    assert report.rendered == len(report.sources) > 40  # core's, every plugin's and the theme's own
    assert report.contrast, "the palette's pairs were found and checked"


def test_a_broken_theme_fails_naming_the_template_and_line(shipped: Platform, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "cards").mkdir(parents=True)
    (templates / "layout.html").write_text('{% extends "base:layout.html" %}\n{% block content %}\n{% if %}\n')
    (templates / "cards" / "list.html").write_text(
        '{% extends "plugin:cards/list.html" %}\n{% block content %}\n<p>{{ "x" | no_such_filter }}</p>\n'
        "{% endblock %}\n"
    )
    (templates / "partials").mkdir()
    (templates / "partials" / "nav.html").write_text('<nav aria-label="Portal">{{ _("Not in any catalog") }}</nav>\n')
    static = tmp_path / "static"
    static.mkdir()
    (static / "broken.css").write_text(":root { --ink-muted: #b0b0b0; }\n")
    registry, catalogs = _registry_with(
        shipped, ThemeSpec(key="broken", title="Broken", templates=templates, static=static)
    )

    report = check_theme(registry, catalogs, "broken")
    lines = [problem.line() for problem in report.problems]

    assert report.sources["layout.html"] == "overridden by this theme"
    assert report.sources["error.html"] == "inherited from base"
    assert report.sources["cards/list.html"] == "overridden by this theme"
    assert any(line.startswith("error: ") and line.split(": ")[1].endswith("layout.html:3") for line in lines), lines
    assert any("cards/list.html" in line and "no_such_filter" in line for line in lines), lines
    assert any(
        line.startswith("untranslated: partials/nav.html [es]") and "Not in any catalog" in line for line in lines
    )
    assert any(line.startswith("contrast: light") and "--ink-muted #b0b0b0" in line for line in lines), lines
    assert not report.ok


def test_the_command_prints_the_report_and_fails_on_problems(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = clean_env()
    passed = subprocess.run(
        [sys.executable, "-m", "portal.cli", "themes", "check", "harbor", "--data-dir", str(tmp_path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert passed.returncode == 0, passed.stderr + passed.stdout[-3000:]
    assert "layout.html" in passed.stdout and "overridden by this theme" in passed.stdout
    assert passed.stdout.rstrip().endswith("ok")
    unknown = subprocess.run(
        [sys.executable, "-m", "portal.cli", "themes", "check", "no-such-theme", "--data-dir", str(tmp_path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert unknown.returncode != 0 and "no-such-theme" in unknown.stderr


def test_contrast_ratio_matches_wcag() -> None:
    assert round(contrast_ratio("#000000", "#ffffff"), 2) == 21.0
    assert round(contrast_ratio("#767676", "#ffffff"), 2) == 4.54
    assert contrast_ratio("#ffffff", "#ffffff") == 1.0


def test_palettes_read_light_and_dark_roots(tmp_path: Path) -> None:
    css = tmp_path / "a.css"
    css.write_text(
        ":root { --ink: #111; --bg: #fff; /* note */ --link: var(--ink); }\n"
        "@media (prefers-color-scheme: dark) { :root { --ink: #eee; --bg: #121212; } .x { color: red; } }\n"
    )
    found = palettes([css])
    assert found["light"]["--ink"] == "#111" and found["light"]["--link"] == "var(--ink)"
    assert found["dark"]["--ink"] == "#eee" and found["dark"]["--bg"] == "#121212"


def test_print_report_lists_sources(shipped: Platform) -> None:
    import io

    report = check_theme(shipped.themes, shipped.catalogs, "base")
    out = io.StringIO()
    print_report(report, out)
    assert out.getvalue().startswith("theme base: ")
