"""The tenant-file snippet of a new package's README is the real format: applied, it turns the plugin on."""

from __future__ import annotations

import asyncio
import importlib
import re
import uuid
from pathlib import Path

from portal.platform import Platform
from portal.plugin_kit.scaffold import importable, scaffold
from portal.testing import BASE_DOMAIN, apply_tenants

SNIPPET = re.compile(r"```toml\n(?P<toml>.*?)```", re.DOTALL)


def _tenant_file(slug: str, plugins: str) -> str:
    """A whole tenant file around ``plugins``, the lines that go under the merchant."""
    return (
        f'[[isos]]\nslug = "{slug}-iso"\nname = "README ISO"\n\n'
        f'[[isos.merchants]]\nslug = "{slug}"\nname = "README Merchant"\n\n{plugins}'
    )


async def test_the_readmes_tenant_snippet_turns_the_plugin_on_with_its_settings(
    portal_platform: Platform, tmp_path: Path
) -> None:
    folder = await asyncio.to_thread(scaffold, "readme_kit", tmp_path)  # it runs an event loop of its own
    [snippet] = [found["toml"] for found in SNIPPET.finditer((folder / "README.md").read_text())]
    assert snippet.startswith("[isos.merchants.plugins.readme_kit]\n")
    pages = (folder / "portal_readme_kit" / "pages.py").read_text()
    assert all(line.strip() in pages for line in snippet.splitlines()), "the Settings docstring shows another snippet"
    slug = f"readme-{uuid.uuid4().hex[:8]}"
    with importable(folder, "portal_readme_kit"):
        plugin = importlib.import_module("portal_readme_kit")
        with_plugin = Platform(portal_platform.settings, extra_plugins=[("readme_kit", plugin)])
        changes = await apply_tenants(with_plugin, _tenant_file(slug, snippet), tmp_path)
        assert ("create", "plugin", f"{slug}:readme_kit", ("enabled",)) in [
            (change.action, change.kind, change.key, change.fields) for change in changes
        ]
        tenant = await with_plugin.tenants.resolve(f"{slug}.{BASE_DOMAIN}")
    assert tenant is not None
    assert tenant.plugin_settings["readme_kit"].max_length == 280
    # The session's platform does not load this package: switch it off again for the other tests.
    await apply_tenants(portal_platform, _tenant_file(slug, ""), tmp_path)
