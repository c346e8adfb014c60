"""The standard-library example in docs/access-links.md mints links the portal accepts."""

from __future__ import annotations

import re
from pathlib import Path

from security.conftest import tenant_at

from portal.access.keys import create_key
from portal.db.engine import tenant_transaction
from portal.testing import customer_id

DOC = Path(__file__).parents[2] / "docs" / "access-links.md"
HOST = "t-apex.portal.localhost"


def _example() -> dict[str, object]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Minting a link with the standard library", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the section holds exactly one Python example"
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    return namespace


def test_the_example_uses_only_the_standard_library() -> None:
    import sys

    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Minting a link with the standard library", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    modules = set(re.findall(r"^(?:from|import) ([a-z_][a-z0-9_]*)", code, flags=re.MULTILINE))
    assert modules and modules <= set(sys.stdlib_module_names) | {"__future__"}, modules


async def test_a_merchant_minted_link_opens_the_portal(platform, portal_client) -> None:
    mint_portal_link = _example()["mint_portal_link"]
    tenant = await tenant_at(platform, HOST)
    async with tenant_transaction(tenant.merchant.iso_id):
        kid, secret = await create_key(tenant.merchant.iso_id, tenant.merchant.id)
    jane = await customer_id("t-apex", "jane@globalco.com")
    url = mint_portal_link(  # type: ignore[operator]
        secret, kid, iso=tenant.merchant.iso_id, merchant=tenant.merchant.id, customer=jane, origin=f"https://{HOST}"
    )
    assert url.startswith(f"https://{HOST}/access/pt1.{kid}.")
    browser = portal_client(HOST)
    landed = await browser.get(url.removeprefix(f"https://{HOST}"))
    assert landed.status_code == 303 and landed.headers["location"] == "/"
    overview = await browser.get("/")
    assert overview.status_code == 200 and "jane@globalco.com" in overview.text
    assert (await portal_client(HOST).get(url.removeprefix(f"https://{HOST}"))).status_code == 410
