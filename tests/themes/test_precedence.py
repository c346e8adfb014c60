"""Template precedence: theme chain, then plugin templates, then core; overrides can extend."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.platform import Platform
from portal.plugin import ThemeSpec
from portal.theming.engine import ThemeError, ThemeRegistry

GREENFIELD = "t-greenfield.portal.localhost"  # theme "harbor", overrides example/widget.html
PINNACLE = "t-pinnacle.portal.localhost"  # theme "base"
APEX = "t-apex.portal.localhost"  # theme "harbor-night" on "harbor": extends base:layout.html


def test_a_theme_override_of_a_plugin_template_wins_and_extends_it(portal_platform: Platform) -> None:
    data = {"data": {"greeting": "Hi", "customer_name": "Jane"}}
    harbor = portal_platform.themes.render("harbor", "example/widget.html", data)
    base = portal_platform.themes.render("base", "example/widget.html", data)
    assert '<span class="harbor-override">Harbor says</span> Hi, Jane' in harbor
    assert 'class="example-widget"' in harbor  # the original's markup, through {% extends %}
    assert "harbor-override" not in base and "Hi, Jane" in base


def test_a_child_theme_inherits_its_parents_overrides(portal_platform: Platform) -> None:
    html = portal_platform.themes.render("harbor-night", "example/widget.html", {"data": {"greeting": "Yo"}})
    assert "harbor-override" in html


def test_explicit_layers_are_addressable(portal_platform: Platform) -> None:
    environment = portal_platform.themes.environment("harbor")
    assert environment.get_template("plugin:example/widget.html").filename.endswith(
        "example_plugin/templates/widget.html"
    )
    assert environment.get_template("base:layout.html").filename.endswith("portal_theme_base/templates/layout.html")
    assert environment.get_template("core:error.html").filename.endswith("portal/templates/error.html")


def test_one_cached_environment_per_theme(portal_platform: Platform) -> None:
    themes = portal_platform.themes
    assert themes.environment("harbor") is themes.environment("harbor")
    assert themes.environment("harbor") is not themes.environment("base")
    assert [spec.key for spec in themes.chain("harbor-night")] == ["harbor-night", "harbor", "base"]


async def test_pages_render_in_the_merchants_theme(shared_tenants: Platform, portal_client, portal_sign_in) -> None:
    apex = portal_client(APEX)
    greenfield = portal_client(GREENFIELD)
    await portal_sign_in(apex, "jane@globalco.com")
    await portal_sign_in(greenfield, "jane@globalco.com")
    apex_page = (await apex.get("/")).text
    greenfield_page = (await greenfield.get("/")).text
    assert '<meta name="portal-theme" content="harbor-night">' in apex_page  # child layout over base:layout
    assert "Harbor says" in apex_page and "Harbor says" in greenfield_page
    assert 'name="portal-theme"' not in greenfield_page


def test_theme_errors_are_caught_at_start_up(tmp_path: Path) -> None:
    base = ThemeSpec(key="base", title="Base", templates=tmp_path, parent=None)
    orphan = ThemeSpec(key="orphan", title="Orphan", templates=tmp_path, parent="missing")
    loop_a = ThemeSpec(key="a", title="A", templates=tmp_path, parent="b")
    loop_b = ThemeSpec(key="b", title="B", templates=tmp_path, parent="a")
    with pytest.raises(ThemeError, match="base theme"):
        ThemeRegistry({"orphan": orphan}, {})
    with pytest.raises(ThemeError, match="names parent 'missing'"):
        ThemeRegistry({"base": base, "orphan": orphan}, {})
    with pytest.raises(ThemeError, match="cycle"):
        ThemeRegistry({"base": base, "a": loop_a, "b": loop_b}, {})
