"""What the invoice pages share: paths, the form body, formats, settings, the customer's lookup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body

from portal.sdk import (
    CustomerView,
    Invoice,
    NotFoundError,
    Tenant,
    billing_invoices,
    current_locale,
    has_prefix,
    render_page,
)
from portal.sdk import gettext as _
from portal_invoices.settings import InvoicesSettings
from portal_invoices.views import Formats, formats_for

KEY = "invoices"
FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
Form = Annotated[dict[str, str], FormBody]
LIST_PATH = "/invoices"
ITEM = LIST_PATH + "/{invoice_id:str}"
HISTORY_PATH = "/payments"

Page = Response[Any]


def settings_of(tenant: Tenant) -> InvoicesSettings:
    """The merchant's invoices settings."""
    settings = tenant.plugin_settings.get(KEY)
    return settings if isinstance(settings, InvoicesSettings) else InvoicesSettings()


def invoice_id(value: str) -> str:
    """``value`` if it can be an invoice id; 404 otherwise."""
    if not has_prefix(value, "inv") or len(value) > 40:
        raise NotFoundException()
    return value


def formats(request: Request[Any, Any, Any], tenant: Tenant) -> Formats:
    """The merchant's time zone and the request's locale (the link's or the switch's, the browser's, the merchant's)."""
    return formats_for(tenant.merchant.timezone, current_locale())


def now() -> datetime:
    """The time now (UTC)."""
    return datetime.now(UTC)


async def own(tenant: Tenant, customer: CustomerView, value: str) -> Invoice:
    """The customer's issued invoice ``value`` (in the caller's transaction), or 404.

    Drafts, another customer's or merchant's invoices and, unless the merchant shows them, void
    invoices all read as missing.
    """
    try:
        invoice = await billing_invoices.get(tenant, invoice_id(value))
    except NotFoundError as exc:
        raise NotFoundException() from exc
    if invoice.customer != customer.id or invoice.number is None:
        raise NotFoundException()
    if invoice.status == "void" and not settings_of(tenant).show_void:
        raise NotFoundException()
    return invoice


def refused_page(request: Request[Any, Any, Any], tenant: Tenant, message: str, *, status_code: int = 403) -> Page:
    """The page of a refusal (403: the merchant does not allow it)."""
    return render_page(
        request,
        "invoices/refused.html",
        tenant=tenant,
        title=_("Not available"),
        active_nav=KEY,
        status_code=status_code,
        message=message,
    )
