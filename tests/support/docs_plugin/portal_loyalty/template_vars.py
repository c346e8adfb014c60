from typing import Any

from portal.sdk import PageContext, hookimpl


@hookimpl
def portal_template_vars(context: PageContext, template: str) -> dict[str, Any]:
    if template != "overview.html":
        return {}
    return {"loyalty_program_name": context.plugin_settings("loyalty").program_name}
