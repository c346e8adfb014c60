from portal.sdk import hookimpl


@hookimpl
def portal_task_modules() -> list[str]:
    return ["portal_loyalty.tasks"]
