from portal.sdk import NavItem, PageContext, hookimpl


@hookimpl
def portal_nav_items(context: PageContext) -> list[NavItem]:
    settings = context.plugin_settings("loyalty")
    return [NavItem(label=settings.program_name, href="/loyalty", order=50, key="loyalty")]
