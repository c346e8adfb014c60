from portal.sdk import PiccoloApp, hookimpl


@hookimpl
def portal_piccolo_apps() -> PiccoloApp:
    return PiccoloApp(module="portal_loyalty.piccolo_app")
