from portal.sdk import PageContext, hookimpl


@hookimpl
def portal_header_partials(context: PageContext) -> list[str]:
    return ["loyalty/points_line.html"]  # "You have 120 points"
