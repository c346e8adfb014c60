from portal.sdk import hookimpl
from portal_loyalty import hookspecs


@hookimpl
def portal_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspecs)
