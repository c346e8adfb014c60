"""The ``loyalty`` plugin of ``docs/plugin_hooks.md``: each module but this one is an example of the page, verbatim.

The docs' tests register this module as the plugin ``loyalty``; it gathers the examples that make
one plugin. Three examples are registered on their own: ``before_page`` (it has a second
``portal_template_vars``), ``themes`` (the installed Harbor theme has its key) and ``purposes``
(the cards plugin declares ``update_payment``); ``minimal`` is the page's first, shortest info.
"""

from portal_loyalty.activity import portal_activity_descriptions
from portal_loyalty.addhooks import portal_addhooks
from portal_loyalty.api import portal_api_routes
from portal_loyalty.cli import portal_cli_commands
from portal_loyalty.counts import portal_other_merchants_counts
from portal_loyalty.events import portal_event_types
from portal_loyalty.flows import portal_link_flows
from portal_loyalty.gateway import portal_payment_gateways
from portal_loyalty.handlers import portal_event_handlers
from portal_loyalty.header import portal_header_partials
from portal_loyalty.info import portal_plugin_info
from portal_loyalty.jobs import portal_scheduled_jobs
from portal_loyalty.nav import portal_nav_items
from portal_loyalty.pages import portal_routes
from portal_loyalty.piccolo import portal_piccolo_apps
from portal_loyalty.summary import portal_account_summary
from portal_loyalty.task_modules import portal_task_modules
from portal_loyalty.template_vars import portal_template_vars
from portal_loyalty.widgets import portal_overview_widgets

__all__ = [
    "portal_account_summary",
    "portal_activity_descriptions",
    "portal_addhooks",
    "portal_api_routes",
    "portal_cli_commands",
    "portal_event_handlers",
    "portal_event_types",
    "portal_header_partials",
    "portal_link_flows",
    "portal_nav_items",
    "portal_other_merchants_counts",
    "portal_overview_widgets",
    "portal_payment_gateways",
    "portal_piccolo_apps",
    "portal_plugin_info",
    "portal_routes",
    "portal_scheduled_jobs",
    "portal_task_modules",
    "portal_template_vars",
]
