from portal.sdk import PluginInfo, hookimpl


@hookimpl
def portal_plugin_info() -> PluginInfo:
    return PluginInfo(key="loyalty", title="Loyalty points")
