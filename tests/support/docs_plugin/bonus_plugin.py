"""Another plugin, implementing the hook the loyalty plugin adds; its page runs the docs' call of that hook."""

from __future__ import annotations

from typing import Any

from docs_blocks import docs_block
from litestar import Request, get

from portal.sdk import PluginInfo, RouteSet, hookimpl


@hookimpl
def portal_plugin_info() -> PluginInfo:
    return PluginInfo(key="loyalty_bonus", title="Loyalty bonus")


@hookimpl
def loyalty_bonus_points(merchant_id: str, customer_id: str) -> int:
    return 5


@get("/loyalty/bonus", name="loyalty_bonus_page", media_type="text/plain")
async def bonus_page(request: Request[Any, Any, Any]) -> str:
    """The docs' block, inside a handler: ``request`` is this request."""
    namespace: dict[str, Any] = {"request": request}
    exec(docs_block("plugin_hooks.md", "bonus_page"), namespace)
    return str(namespace["bonus"])


@hookimpl
def portal_routes() -> RouteSet:
    return RouteSet(handlers=[bonus_page])
