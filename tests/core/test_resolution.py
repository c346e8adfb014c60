"""Host resolution: custom domain, then slug under the base domain; unknown or suspended is 404."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import asyncpg

from portal.platform import Platform
from portal.testing import apply_tenants


async def test_slug_host_and_custom_domain_resolve_to_the_merchant(shared_tenants: Platform) -> None:
    by_slug = await shared_tenants.tenants.resolve("t-greenfield.portal.localhost")
    by_domain = await shared_tenants.tenants.resolve("Portal.Greenfield.Test.")
    with_port = await shared_tenants.tenants.resolve("t-greenfield.portal.localhost:8443")
    assert by_slug is not None and by_domain is not None and with_port is not None
    assert by_slug.merchant.id == by_domain.merchant.id == with_port.merchant.id


async def test_unknown_hosts_answer_404_never_a_default(shared_tenants: Platform, portal_client) -> None:
    for host in ["nobody.portal.localhost", "portal.localhost", "t-greenfield.other.test", "127.0.0.1"]:
        response = await portal_client(host).get("/")
        assert response.status_code == 404, host
        assert "Greenfield" not in response.text
        assert "There is no portal at this address." in response.text
    problem = await portal_client("nobody.portal.localhost").get("/api/v1/anything")
    assert problem.status_code == 404
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert problem.json()["status"] == 404


async def test_brand_reaches_the_page_through_css_custom_properties(
    shared_tenants: Platform, portal_client, portal_sign_in
) -> None:
    colours = {}
    for slug in ["t-greenfield", "t-pinnacle"]:
        client = portal_client(f"{slug}.portal.localhost")
        await portal_sign_in(client, "jane@globalco.com")
        page = (await client.get("/")).text
        colours[slug] = re.search(r"--brand: (#[0-9a-f]{6})", page).group(1)  # type: ignore[union-attr]
    assert colours == {"t-greenfield": "#2e7d32", "t-pinnacle": "#5b21b6"}


async def test_suspending_invalidates_the_cache_in_every_process(portal_platform: Platform, tmp_path: Path) -> None:
    iso, slug = f"iso-{uuid.uuid4().hex[:8]}", f"m-{uuid.uuid4().hex[:8]}"
    text = f'[[isos]]\nslug = "{iso}"\nname = "I"\n[[isos.merchants]]\nslug = "{slug}"\nname = "M"\n'
    await apply_tenants(portal_platform, text, tmp_path)
    host = f"{slug}.portal.localhost"
    assert await portal_platform.tenants.resolve(host) is not None
    # Another process (here: the owner connection) suspends the merchant; NOTIFY clears our cache.
    owner = await asyncpg.connect(portal_platform.settings.database_url)
    try:
        await owner.execute("UPDATE portal_merchant SET status = 'suspended' WHERE slug = $1", slug)
    finally:
        await owner.close()
    for _ in range(50):
        if await portal_platform.tenants.resolve(host) is None:
            break
        await asyncio.sleep(0.05)
    assert await portal_platform.tenants.resolve(host) is None


async def test_a_suspended_iso_hides_all_its_merchants(portal_platform: Platform, tmp_path: Path) -> None:
    iso, slug = f"iso-{uuid.uuid4().hex[:8]}", f"m-{uuid.uuid4().hex[:8]}"
    text = f'[[isos]]\nslug = "{iso}"\nname = "I"\n[[isos.merchants]]\nslug = "{slug}"\nname = "M"\n'
    await apply_tenants(portal_platform, text, tmp_path)
    assert await portal_platform.tenants.resolve(f"{slug}.portal.localhost") is not None
    await apply_tenants(portal_platform, text.replace('name = "I"', 'name = "I"\nstatus = "suspended"'), tmp_path)
    assert await portal_platform.tenants.resolve(f"{slug}.portal.localhost") is None
