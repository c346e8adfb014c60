"""The plugin SDK: everything a feature plugin imports from core, in one module.

A plugin imports ``portal.sdk`` and nothing else of ``portal`` (its tests may also use the
pytest plugin ``portal.testing``); a test checks that every plugin in ``plugins/`` does. When a
plugin needs something that is not here, the answer is a hook or a new name here, not an import
of a core module. ``docs/writing_plugins.md`` explains each group below.
"""

from __future__ import annotations

from portal.access.actors import customer_actor
from portal.access.links import IssuedLink, LinkRefusedError, fulfil_link, issue_link, public_origin
from portal.access.tokens import Claims
from portal.activity.formats import ActivityFormat
from portal.api.auth import api_merchant
from portal.api.keys import ApiPrincipal
from portal.api.params import MerchantParam
from portal.billing import catalog as billing_catalog
from portal.billing import changes as billing_changes
from portal.billing import charges as billing_charges
from portal.billing import invoices as billing_invoices
from portal.billing import subscriptions as billing_subscriptions
from portal.billing.calendar import add_periods
from portal.billing.clock import merchant_now
from portal.billing.errors import BillingError, NotFoundError
from portal.billing.models import Invoice, Price, Product, ProrationBehavior, Subscription, SubscriptionStatus
from portal.billing.money import format_money
from portal.billing.proration import ProrationPreview, preview_change
from portal.config import load_settings
from portal.customers.billing import BillingDetails, BillingDetailsError, get_billing_details, update_billing_details
from portal.db.batch import in_one_transaction
from portal.db.engine import (
    ENGINE,
    after_commit,
    fetch,
    json_value,
    savepoint,
    system_transaction,
    tenant_transaction,
    transaction_lock,
)
from portal.db.security import tenant_table_sql
from portal.db.tenant_migration import TenantMigrationManager
from portal.events.bus import SYSTEM, Actor, EmittedEvent, emit, record_events_at_commit
from portal.events.customer import emit_as_customer
from portal.i18n import LANGUAGES, N_, current_language, current_locale, gettext, ngettext, pgettext
from portal.ids import has_prefix, new_id
from portal.mail.send import send_email
from portal.payments import methods as payment_methods
from portal.payments.choice import GatewayNotConfiguredError
from portal.payments.gateway import (
    Card,
    GatewayDeclinedError,
    GatewayResponse,
    GatewayUnavailableError,
    HostedFields,
    Money,
    PaymentGatewayAdapter,
    VaultCustomer,
    VaultEntry,
)
from portal.payments.methods import (
    PaymentMethod,
    PaymentMethodError,
    PaymentMethodNotFoundError,
    charge_ready,
    default_method,
    expires_on,
    list_methods,
    removed_method,
)
from portal.platform import Platform
from portal.plugin import (
    PROJECT_NAME,
    ActivityDescription,
    ActivityEvent,
    ActivityLine,
    ApiRouteSet,
    ApiScope,
    CliCommand,
    EventHandler,
    EventType,
    HandledEvent,
    LinkFlow,
    LinkPurpose,
    NavItem,
    PaymentGateway,
    PiccoloApp,
    PluginInfo,
    RouteSet,
    ScheduledJob,
    ThemeSpec,
    Widget,
    hookimpl,
)
from portal.tasks.durable import PermanentTaskError, TaskRun, durable_batch_task, durable_task, queue_task
from portal.tasks.system import iso_ids
from portal.tenancy.context import PageContext
from portal.tenancy.models import Brand, CustomerView, MerchantView, Tenant, normalize_email
from portal.tenancy.tables import Customer, Iso, Merchant
from portal.web.forms import Form
from portal.web.headers import allow_form_targets, allow_origins
from portal.web.render import render_page
from portal.web.sessions import COOKIE_NAME as SESSION_COOKIE
from portal.web.sessions import end_session
from portal.web.state import customer_of, optional_customer, platform_of, session_of, tenant_of

__all__ = [
    "ENGINE",
    "LANGUAGES",
    "N_",
    "PROJECT_NAME",
    "SESSION_COOKIE",
    "SYSTEM",
    "ActivityDescription",
    "ActivityEvent",
    "ActivityFormat",
    "ActivityLine",
    "Actor",
    "ApiPrincipal",
    "ApiRouteSet",
    "ApiScope",
    "BillingDetails",
    "BillingDetailsError",
    "BillingError",
    "Brand",
    "Card",
    "Claims",
    "CliCommand",
    "Customer",
    "CustomerView",
    "EmittedEvent",
    "EventHandler",
    "EventType",
    "Form",
    "GatewayDeclinedError",
    "GatewayNotConfiguredError",
    "GatewayResponse",
    "GatewayUnavailableError",
    "HandledEvent",
    "HostedFields",
    "Invoice",
    "Iso",
    "IssuedLink",
    "LinkFlow",
    "LinkPurpose",
    "LinkRefusedError",
    "Merchant",
    "MerchantParam",
    "MerchantView",
    "Money",
    "NavItem",
    "NotFoundError",
    "PageContext",
    "PaymentGateway",
    "PaymentGatewayAdapter",
    "PaymentMethod",
    "PaymentMethodError",
    "PaymentMethodNotFoundError",
    "PermanentTaskError",
    "PiccoloApp",
    "Platform",
    "PluginInfo",
    "Price",
    "Product",
    "ProrationBehavior",
    "ProrationPreview",
    "RouteSet",
    "ScheduledJob",
    "Subscription",
    "SubscriptionStatus",
    "TaskRun",
    "Tenant",
    "TenantMigrationManager",
    "ThemeSpec",
    "VaultCustomer",
    "VaultEntry",
    "Widget",
    "add_periods",
    "after_commit",
    "allow_form_targets",
    "allow_origins",
    "api_merchant",
    "billing_catalog",
    "billing_changes",
    "billing_charges",
    "billing_invoices",
    "billing_subscriptions",
    "charge_ready",
    "current_language",
    "current_locale",
    "customer_actor",
    "customer_of",
    "default_method",
    "durable_batch_task",
    "durable_task",
    "emit",
    "emit_as_customer",
    "end_session",
    "expires_on",
    "fetch",
    "format_money",
    "fulfil_link",
    "get_billing_details",
    "gettext",
    "has_prefix",
    "hookimpl",
    "in_one_transaction",
    "iso_ids",
    "issue_link",
    "json_value",
    "list_methods",
    "load_settings",
    "merchant_now",
    "new_id",
    "ngettext",
    "normalize_email",
    "optional_customer",
    "payment_methods",
    "pgettext",
    "platform_of",
    "preview_change",
    "public_origin",
    "queue_task",
    "record_events_at_commit",
    "removed_method",
    "render_page",
    "savepoint",
    "send_email",
    "session_of",
    "system_transaction",
    "tenant_of",
    "tenant_table_sql",
    "tenant_transaction",
    "transaction_lock",
    "update_billing_details",
]
