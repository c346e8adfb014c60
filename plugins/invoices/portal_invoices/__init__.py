"""Invoices: customers see, pay and download their invoices, and every payment they made.

The invoices and payments are core's billing ledger (``portal.sdk.billing_invoices``,
``portal.sdk.billing_charges``): this plugin is the customer's pages over it. Paying goes
through the ledger's ``pay_invoice``, which emits the ``payment.*`` and ``invoice.*`` events
(audit record and webhooks) in its own transactions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portal.sdk import (
    N_,
    LinkFlow,
    NavItem,
    PageContext,
    PiccoloApp,
    PluginInfo,
    RouteSet,
    Tenant,
    Widget,
    hookimpl,
    ngettext,
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_invoices import store
from portal_invoices.routes import INVOICE_ROUTES
from portal_invoices.settings import InvoicesSettings
from portal_invoices.web import KEY, formats, now, settings_of

HERE = Path(__file__).resolve().parent
TOTALS = "portal_invoices_totals"

__all__ = ["InvoicesSettings"]


@hookimpl
def portal_plugin_info() -> PluginInfo:
    """Invoices."""
    return PluginInfo(
        key=KEY,
        title="Invoices",
        description="Customers see, pay and download their invoices, and their payment history.",
        settings=InvoicesSettings,
        templates=HERE / "templates",
        static=HERE / "static",
    )


@hookimpl
def portal_piccolo_apps() -> PiccoloApp:
    """Kept PDFs and pay keys."""
    return PiccoloApp(module="portal_invoices.piccolo_app")


@hookimpl
def portal_routes() -> RouteSet:
    """The pages under ``/invoices`` and ``/payments``."""
    return RouteSet(handlers=INVOICE_ROUTES)


@hookimpl
def portal_link_flows() -> list[LinkFlow]:
    """A deep link that pays one invoice (for "Pay now" emails)."""
    return [
        LinkFlow(
            name="invoice_pay", path="/invoices/{id}/pay", title="Pay an invoice", parameter="invoice",
            parameter_prefix="inv",
        )
    ]  # fmt: skip


@hookimpl
def portal_nav_items(context: PageContext) -> list[NavItem]:
    """*Invoices* in the navigation."""
    return [NavItem(label=N_("Invoices"), href="/invoices", order=20, key=KEY)]


async def _figures(context: PageContext) -> dict[str, Any]:
    """The customer's outstanding, paid this year and count, per currency (read once per page)."""
    state = context.request.state
    cached: dict[str, Any] | None = getattr(state, TOTALS, None)
    if cached is not None:
        return cached
    customer = context.customer
    merchant = context.merchant
    fmt = formats(context.request, context.tenant)
    totals: list[store.Totals] = []
    if customer is not None:
        async with tenant_transaction(context.iso_id):  # joins the Overview's transaction
            totals = await store.totals(
                merchant.id, customer.id, fmt.year_start(now()), show_void=settings_of(context.tenant).show_void
            )
    outstanding = [fmt.round_money(t.outstanding, t.currency) for t in totals if t.outstanding]
    paid = [fmt.round_money(t.paid_this_year, t.currency) for t in totals if t.paid_this_year]
    count = sum(t.count for t in totals)
    figures = {
        "outstanding": outstanding,
        "paid_ytd": paid,
        "year_start": fmt.day(fmt.year_start(now())),
        "count": count,
        "count_text": fmt.number(count),
    }
    setattr(state, TOTALS, figures)
    return figures


@hookimpl
def portal_overview_widgets(context: PageContext) -> list[Widget]:
    """*Outstanding*, *Paid YTD* and *Invoices* on the Overview, before *Subscriptions* (30)."""
    return [
        Widget(key="invoices-outstanding", title=_("Outstanding"), template="invoices/widget_outstanding.html",
               load=_figures, order=10),
        Widget(key="invoices-paid", title=_("Paid YTD"), template="invoices/widget_paid.html", load=_figures,
               order=11),
        Widget(key="invoices-count", title=_("Invoices"), template="invoices/widget_count.html", load=_figures,
               order=12),
    ]  # fmt: skip


@hookimpl
async def portal_account_summary(tenant: Tenant, customer_id: str) -> str | None:
    """``1 invoice due`` on the merchant switch page (nothing when none is open)."""
    async with tenant_transaction(tenant.merchant.iso_id):
        due = await store.open_count(tenant.merchant.id, customer_id)
    return ngettext("%(count)d invoice due", "%(count)d invoices due", due) % {"count": due} if due else None
