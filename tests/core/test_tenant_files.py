"""Tenant files: validated completely first, nothing written on any error, idempotent."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from portal.db.engine import fetch, system_transaction
from portal.platform import Platform
from portal.tenancy.files import TenantFileError, load_tenant_file
from portal.testing import apply_tenants


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _slug_exists(slug: str) -> bool:
    async with system_transaction():
        rows = await fetch("SELECT * FROM portal_locate_merchant($1)", slug)
    return bool(rows)


async def _iso_exists(slug: str) -> bool:
    async with system_transaction():
        rows = await fetch("SELECT portal_iso_id_for_slug($1) AS id", slug)
    return rows[0]["id"] is not None


def _file(iso: str, merchant: str, extra: str = "", domains: str = "[]") -> str:
    return f"""
[[isos]]
slug = "{iso}"
name = "ISO {iso}"

[[isos.merchants]]
slug = "{merchant}"
name = "Merchant {merchant}"
domains = {domains}
{extra}
[[isos.merchants.customers]]
email = "Jane@Example.com"
name = "Jane"
"""


async def test_apply_twice_changes_nothing_the_second_time(portal_platform: Platform, tmp_path: Path) -> None:
    iso, merchant = _unique("iso"), _unique("m")
    text = _file(iso, merchant, '[isos.merchants.plugins.example]\nsettings = { greeting = "Hi" }')
    first = await apply_tenants(portal_platform, text, tmp_path)
    second = await apply_tenants(portal_platform, text, tmp_path)
    assert {c.describe() for c in first} == {
        f"create iso {iso}",
        f"create merchant {merchant}",
        f"create plugin {merchant}:example (enabled)",
        f"create customer {merchant}:jane@example.com",
    }
    assert second == []


async def test_dry_run_reports_and_writes_nothing(portal_platform: Platform, tmp_path: Path) -> None:
    iso, merchant = _unique("iso"), _unique("m")
    changes = await apply_tenants(portal_platform, _file(iso, merchant), tmp_path, dry_run=True)
    assert [c.describe() for c in changes][:2] == [f"create iso {iso}", f"create merchant {merchant}"]
    assert not await _iso_exists(iso)
    assert not await _slug_exists(merchant)


async def test_updates_are_reported_field_by_field(portal_platform: Platform, tmp_path: Path) -> None:
    iso, merchant = _unique("iso"), _unique("m")
    await apply_tenants(portal_platform, _file(iso, merchant), tmp_path)
    changed = _file(iso, merchant, '[isos.merchants.brand]\ncolor = "#123456"').replace(
        'name = "Jane"', 'name = "Jane D."'
    )
    changes = await apply_tenants(portal_platform, changed, tmp_path)
    assert [c.describe() for c in changes] == [
        f"update merchant {merchant} (brand_color)",
        f"update customer {merchant}:jane@example.com (name)",
    ]


async def test_unlisted_domains_are_removed_and_plugins_turned_off(portal_platform: Platform, tmp_path: Path) -> None:
    iso, merchant = _unique("iso"), _unique("m")
    host_a, host_b = f"{merchant}-a.example.com", f"{merchant}-b.example.com"
    await apply_tenants(
        portal_platform,
        _file(iso, merchant, "[isos.merchants.plugins.example]", domains=f'["{host_a}", "{host_b}"]'),
        tmp_path,
    )
    changes = await apply_tenants(portal_platform, _file(iso, merchant, domains=f'["{host_a}"]'), tmp_path)
    assert sorted(c.describe() for c in changes) == [
        f"delete domain {merchant}:{host_b}",
        f"update plugin {merchant}:example (enabled)",
    ]
    assert await portal_platform.tenants.resolve(host_a) is not None
    assert await portal_platform.tenants.resolve(host_b) is None
    tenant = await portal_platform.tenants.resolve(host_a)
    assert tenant is not None and tenant.enabled_plugins == frozenset()


INVALID_FILES = {
    "bad colour": ('[isos.merchants.brand]\ncolor = "green"', "isos[0].merchants[0].brand.color"),
    "unknown key": ('colour = "#123456"', "isos[0].merchants[0]"),
    "unknown plugin": ("[isos.merchants.plugins.nope]", "isos[0].merchants[0].plugins.nope"),
    "bad settings": (
        '[isos.merchants.plugins.example]\nsettings = { max_items = "three" }',
        "isos[0].merchants[0].plugins.example.settings",
    ),
    "unknown theme": ('theme = "nope"', "isos[0].merchants[0].theme"),
    "bad timezone": ('timezone = "Mars/Olympus"', "isos[0].merchants[0].timezone"),
    "http logo": (
        '[isos.merchants.brand]\nlogo_url = "http://cdn.example.com/logo.png"',
        "isos[0].merchants[0].brand.logo_url",
    ),
    "protocol-relative logo": (
        '[isos.merchants.brand]\nlogo_url = "//cdn.example.com/logo.png"',
        "isos[0].merchants[0].brand.logo_url",
    ),
    "logo outside /static": (
        '[isos.merchants.brand]\nlogo_url = "/access/logo.svg"',
        "isos[0].merchants[0].brand.logo_url",
    ),
    "logo climbing out of /static": (
        '[isos.merchants.brand]\nlogo_url = "/static/../admin/logo.svg"',
        "isos[0].merchants[0].brand.logo_url",
    ),
}


async def test_a_logo_may_be_a_file_the_portal_serves(portal_platform: Platform, tmp_path: Path) -> None:
    iso, merchant = _unique("iso"), _unique("m")
    logo = "/static/themes/harbor/logos/greenfield.svg"
    await apply_tenants(portal_platform, _file(iso, merchant, f'[isos.merchants.brand]\nlogo_url = "{logo}"'), tmp_path)
    tenant = await portal_platform.tenants.resolve(f"{merchant}.{portal_platform.settings.base_domain}")
    assert tenant is not None and tenant.merchant.brand.logo_url == logo


@pytest.mark.parametrize("case", sorted(INVALID_FILES))
async def test_invalid_file_names_file_and_key_and_writes_nothing(
    portal_platform: Platform, tmp_path: Path, case: str
) -> None:
    extra, key = INVALID_FILES[case]
    iso, merchant = _unique("iso"), _unique("m")
    # A second, valid ISO in the same file must not be written either.
    text = _file(iso, merchant, extra) + _file(_unique("iso"), _unique("m")).replace("[[isos]]", "[[isos]]", 1)
    with pytest.raises(TenantFileError) as error:
        await apply_tenants(portal_platform, text, tmp_path)
    message = str(error.value)
    assert message.startswith(str(tmp_path)) or ".toml: " in message
    assert key in message, message
    assert not await _iso_exists(iso)


async def test_conflict_found_while_writing_rolls_everything_back(portal_platform: Platform, tmp_path: Path) -> None:
    owner_iso, taken = _unique("iso"), _unique("m")
    await apply_tenants(portal_platform, _file(owner_iso, taken), tmp_path)
    iso, fresh = _unique("iso"), _unique("m")
    # Valid on its own; the second merchant's slug belongs to another ISO.
    text = _file(iso, fresh) + f'\n[[isos.merchants]]\nslug = "{taken}"\nname = "Stolen"\n'
    with pytest.raises(TenantFileError) as error:
        await apply_tenants(portal_platform, text, tmp_path)
    assert f"isos[0].merchants[1].slug: merchant '{taken}' belongs to another ISO" in str(error.value)
    assert not await _iso_exists(iso)
    assert not await _slug_exists(fresh)


async def test_a_domain_of_another_iso_is_refused(portal_platform: Platform, tmp_path: Path) -> None:
    host = f"{_unique('shop')}.example.com"
    await apply_tenants(portal_platform, _file(_unique("iso"), _unique("m"), domains=f'["{host}"]'), tmp_path)
    iso = _unique("iso")
    with pytest.raises(TenantFileError, match="domains\\[0\\]: .* belongs to another ISO"):
        await apply_tenants(portal_platform, _file(iso, _unique("m"), domains=f'["{host}"]'), tmp_path)
    assert not await _iso_exists(iso)


async def test_a_domain_can_move_between_merchants_of_one_iso(portal_platform: Platform, tmp_path: Path) -> None:
    iso, first, second = _unique("iso"), _unique("m"), _unique("m")
    host = f"{first}.example.com"
    two = (
        _file(iso, first, domains=f'["{host}"]')
        + f'\n[[isos.merchants]]\nslug = "{second}"\nname = "Second"\ndomains = []\n'
    )
    await apply_tenants(portal_platform, two, tmp_path)
    moved = _file(iso, first).replace(
        "[[isos.merchants]]",
        f'[[isos.merchants]]\nslug = "{second}"\nname = "Second"\ndomains = ["{host}"]\n\n[[isos.merchants]]',
        1,
    )
    await apply_tenants(portal_platform, moved, tmp_path)
    tenant = await portal_platform.tenants.resolve(host)
    assert tenant is not None and tenant.merchant.slug == second


def test_invalid_toml_is_reported_with_the_file(portal_platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[isos]\nslug = 1", encoding="utf-8")
    with pytest.raises(TenantFileError, match="broken.toml: not valid TOML"):
        load_tenant_file(path, portal_platform.registry, "portal.localhost")


def test_the_demo_file_is_valid(portal_platform: Platform) -> None:
    demo = Path(__file__).parents[2] / "tenants" / "demo.toml"
    spec = load_tenant_file(demo, portal_platform.registry, "portal.localhost")
    harbor = next(iso for iso in spec.isos if iso.slug == "harbor")
    assert [m.slug for m in harbor.merchants] == ["greenfield", "pinnacle", "apex"]
    assert len({m.brand.color for m in harbor.merchants}) == 3
    emails = {c.email.lower() for iso in spec.isos for m in iso.merchants for c in m.customers}
    assert "jane@globalco.com" in emails and len(spec.isos) == 2
