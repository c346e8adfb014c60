"""Brand colours that always read: text on brand surfaces, brand text on light and dark pages, warnings."""

from __future__ import annotations

import colorsys
import uuid
from pathlib import Path

import msgspec
import pytest

from portal.mail import render_email
from portal.payments.sandbox.frames import FIELD_SPECS, render_field
from portal.platform import Platform
from portal.tenancy.colours import (
    AA,
    DARK_BACKGROUND,
    LIGHT_BACKGROUND,
    NEAR_BLACK,
    WHITE,
    adjustments,
    contrast,
    luminance,
    on_surface,
    palette,
    text_on,
)
from portal.tenancy.files import load_tenant_file, tenant_file_warnings
from portal.tenancy.models import Brand, MerchantView
from portal.testing import apply_tenants
from support.cli import cli_environment, portal

PALE = "#f5f5a0"
MID = "#e91e63"  # white text 4.35:1, near-black 4.34:1: neither reads


def hue(hex_color: str) -> float:
    red, green, blue = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hls(red, green, blue)[0]


def test_luminance_and_contrast_follow_wcag() -> None:
    assert luminance("#ffffff") == pytest.approx(1.0)
    assert luminance("#000000") == pytest.approx(0.0)
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#000000") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the well-known near miss


def test_a_dark_brand_gets_white_text_and_stays_as_chosen() -> None:
    assert on_surface("#1a237e") == ("#1a237e", WHITE)
    assert on_surface("#2E7D32") == ("#2e7d32", WHITE)
    assert adjustments("#1a237e") == []


def test_a_pale_brand_gets_near_black_text() -> None:
    surface, text = on_surface(PALE)
    assert (surface, text) == (PALE, NEAR_BLACK)
    assert contrast(surface, text) >= AA


def test_a_mid_tone_is_adjusted_until_its_text_reads_keeping_its_hue() -> None:
    assert max(contrast(MID, WHITE), contrast(MID, NEAR_BLACK)) < AA
    surface, text = on_surface(MID)
    assert surface != MID
    assert contrast(surface, text) >= AA
    assert hue(surface) == pytest.approx(hue(MID), abs=0.01)
    for grey in ("#787878", "#7a7a7a"):  # just either side of the middle: darkened, then lightened
        surface, text = on_surface(grey)
        assert surface != grey and contrast(surface, text) >= AA
    assert on_surface("#787878")[1] == WHITE and luminance(on_surface("#787878")[0]) < luminance("#787878")
    assert on_surface("#7a7a7a")[1] == NEAR_BLACK and luminance(on_surface("#7a7a7a")[0]) > luminance("#7a7a7a")


def test_a_pale_brand_gets_text_colours_that_read_on_light_and_dark_pages() -> None:
    colours = palette(PALE)
    assert contrast(PALE, LIGHT_BACKGROUND) < AA
    assert colours.text != PALE and contrast(colours.text, LIGHT_BACKGROUND) >= AA
    assert contrast(colours.text, "#ffffff") >= AA and contrast(colours.text, "#f6f8fa") >= AA
    assert hue(colours.text) == pytest.approx(hue(PALE), abs=0.01)
    assert colours.text_dark == PALE and contrast(colours.text_dark, DARK_BACKGROUND) >= AA


def test_a_dark_brand_is_lightened_for_the_dark_scheme() -> None:
    colours = palette("#1a237e")
    assert colours.text == "#1a237e"
    assert colours.text_dark != "#1a237e"
    assert contrast(colours.text_dark, DARK_BACKGROUND) >= AA
    assert contrast(colours.text_dark, "#12161d") >= AA  # the dark page itself
    assert text_on("#1a237e", DARK_BACKGROUND) == colours.text_dark


def test_every_colour_of_a_brand_reads() -> None:
    for chosen in (PALE, MID, "#ffffff", "#000000", "#2f5bea", "#fdd835", "#00ff00", "#808080"):
        brand = Brand(color=chosen, accent=PALE)
        assert brand.chosen_color == chosen
        assert contrast(brand.color, brand.contrast_color) >= AA, chosen
        assert contrast(brand.text, LIGHT_BACKGROUND) >= AA, chosen
        assert contrast(brand.text_dark, DARK_BACKGROUND) >= AA, chosen


def test_the_accent_is_computed_like_the_brand_and_defaults_to_it() -> None:
    brand = Brand(color="#1a237e", accent="#F5F5A0")
    assert brand.chosen_accent == PALE
    assert (brand.accent, brand.accent_contrast) == (PALE, NEAR_BLACK)
    assert brand.accent_text == palette(PALE).text and contrast(brand.accent_text, LIGHT_BACKGROUND) >= AA
    assert brand.accent_text_dark == PALE
    plain = Brand(color=MID)
    assert plain.chosen_accent is None
    assert (plain.accent, plain.accent_contrast) == (plain.color, plain.contrast_color)
    assert (plain.accent_text, plain.accent_text_dark) == (plain.text, plain.text_dark)


def test_a_brand_rebuilt_from_its_fields_keeps_what_was_chosen() -> None:
    brand = Brand(color=MID, logo_url="https://example.test/logo.svg")
    assert brand.color != MID and brand.chosen_color == MID
    again = msgspec.convert(msgspec.to_builtins(brand), Brand)
    assert again == brand


def tenant_file(slug: str, *, accent: str | None = None) -> str:
    text = f"""
[[isos]]
slug = "{slug}-iso"
name = "Pale Payments"

[[isos.merchants]]
slug = "{slug}"
name = "Pale Lemon Co."
[isos.merchants.brand]
color = "{PALE}"
"""
    if accent:
        text += f'accent = "{accent}"\n'
    return text


def test_validation_warns_naming_the_merchant_and_the_colour(portal_platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "pale.toml"
    path.write_text(tenant_file("pale-lemon", accent=MID), encoding="utf-8")
    spec = load_tenant_file(path, portal_platform.registry, "portal.localhost")
    warnings = tenant_file_warnings(spec, path)
    text = palette(PALE).text
    assert warnings == [
        f"{path}: isos[0].merchants[0].brand.color: merchant 'pale-lemon': brand colour "
        f"{PALE} is too pale for text on white: shown as {text}",
        f"{path}: isos[0].merchants[0].brand.accent: merchant 'pale-lemon': accent colour "
        f"{MID} is a mid tone that neither white nor near-black text reads on (needs 4.5:1): "
        f"brand surfaces are shown as {on_surface(MID)[0]} with #ffffff text",
        f"{path}: isos[0].merchants[0].brand.accent: merchant 'pale-lemon': accent colour "
        f"{MID} is too pale for text on white: shown as {palette(MID).text}",
    ]
    path.write_text(tenant_file("fine-navy").replace(PALE, "#1a237e"), encoding="utf-8")
    assert tenant_file_warnings(load_tenant_file(path, portal_platform.registry, "portal.localhost"), path) == []


def test_an_accent_must_be_a_hex_colour(portal_platform: Platform, tmp_path: Path) -> None:
    from portal.tenancy.files import TenantFileError

    path = tmp_path / "bad.toml"
    path.write_text(tenant_file("bad-accent", accent="yellow"), encoding="utf-8")
    with pytest.raises(TenantFileError) as failed:
        load_tenant_file(path, portal_platform.registry, "portal.localhost")
    assert "isos[0].merchants[0].brand.accent" in str(failed.value)


def test_tenants_apply_dry_run_prints_the_warning_and_succeeds(portal_platform: Platform, tmp_path: Path) -> None:
    env = cli_environment(str(portal_platform.settings.database_url), tmp_path / "site")
    slug = f"pale-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "pale.toml"
    path.write_text(tenant_file(slug), encoding="utf-8")
    result = portal(env, "tenants", "apply", str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: {path}: isos[0].merchants[0].brand.color: merchant '{slug}': brand colour "
        f"{PALE} is too pale for text on white: shown as {palette(PALE).text}"
    ]
    assert f"would create merchant {slug}" in result.stdout


async def test_a_merchant_is_loaded_with_its_computed_colours(portal_platform: Platform, tmp_path: Path) -> None:
    slug = f"pale-{uuid.uuid4().hex[:8]}"
    changes = await apply_tenants(portal_platform, tenant_file(slug, accent="#1A237E"), tmp_path)
    assert f"create merchant {slug}" in [change.describe() for change in changes]
    tenant = await portal_platform.tenants.resolve(f"{slug}.{portal_platform.settings.base_domain}")
    assert tenant is not None
    brand = tenant.merchant.brand
    assert (brand.chosen_color, brand.color, brand.contrast_color) == (PALE, PALE, NEAR_BLACK)
    assert brand.text == palette(PALE).text and brand.text_dark == PALE
    assert (brand.chosen_accent, brand.accent, brand.accent_contrast) == ("#1a237e", "#1a237e", WHITE)
    assert brand.accent_text_dark == palette("#1a237e").text_dark
    again = await portal_platform.tenants.resolve(f"{slug}.{portal_platform.settings.base_domain}")
    assert again is tenant  # computed once per merchant, not per request

    changes = await apply_tenants(portal_platform, tenant_file(slug), tmp_path)
    assert f"update merchant {slug} (accent_color)" in [change.describe() for change in changes]
    tenant = await portal_platform.tenants.resolve(f"{slug}.{portal_platform.settings.base_domain}")
    assert tenant is not None and tenant.merchant.brand.chosen_accent is None


def test_the_email_button_uses_the_adjusted_surface_and_its_text_colour(portal_platform: Platform) -> None:
    shop = MerchantView(
        id="mer_brand_email", iso_id="iso_brand_email", slug="mid-tone", name="Mid Tone Shop", timezone="UTC",
        locale="en", theme_key="base", brand=Brand(color=MID),
    )  # fmt: skip
    url = "https://mid-tone.portal.localhost/access/abc"
    _subject, _text, html = render_email(
        portal_platform.themes, shop, "login_link", {"url": url, "expires_minutes": 15, "customer_name": ""}
    )
    surface, text = on_surface(MID)
    assert f"background-color: {surface}; color: {text};" in html
    assert MID not in html  # the chosen mid tone, on which neither text colour reads, is never used
    assert f"a {{ color: {palette(MID).text}; }}" in html


def test_the_sandbox_card_field_rings_focus_in_the_brand_text_colours() -> None:
    brand = Brand(color=PALE)
    html = render_field(
        FIELD_SPECS["ccnumber"], title="Card number", placeholder="", css="", lang="en", nonce="n0nce",
        instance="i1", tokenization_key="key", focus_color=brand.text, focus_color_dark=brand.text_dark,
    )  # fmt: skip
    assert '<meta name="color-scheme" content="light dark">' in html
    assert f"input:focus {{ outline: 2px solid {brand.text};" in html
    assert f"input:focus {{ outline-color: {brand.text_dark};" in html
    unsafe = render_field(
        FIELD_SPECS["cvv"], title="CVV", placeholder="", css="", lang="en", nonce="n0nce", instance="i1",
        tokenization_key="key", focus_color="red;}body{display:none", focus_color_dark="#zzzzzz",
    )  # fmt: skip
    assert "display:none" not in unsafe and "#zzzzzz" not in unsafe
