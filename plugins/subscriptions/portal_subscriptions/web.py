"""What the subscription pages share: paths, the form body, formats, refusals, the customer's lookup."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from litestar.response import Redirect

from portal.sdk import CustomerView, Tenant, has_prefix, render_page, tenant_transaction
from portal.sdk import gettext as _
from portal_subscriptions import service, store
from portal_subscriptions.choices import RefusedError
from portal_subscriptions.service import SubscriptionNotFoundError
from portal_subscriptions.views import Formats, formats_for

FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
Form = Annotated[dict[str, str], FormBody]
LIST_PATH = "/subscriptions"
ITEM = LIST_PATH + "/{sub_id:str}"
BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover"}
"""Card brands by name (names, not translated)."""

Page = Response[Any]


def subscription_id(value: str) -> str:
    """``value`` if it can be a subscription id; 404 otherwise."""
    if not has_prefix(value, "sub"):
        raise NotFoundException()
    return value


def formats(request: Request[Any, Any, Any], tenant: Tenant) -> Formats:
    """The merchant's time zone and the request's locale (the link's or the switch's, the browser's, the merchant's)."""
    return formats_for(tenant.merchant.timezone)


def query_values(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The query string as a form (first value of each name)."""
    return {name: str(request.query_params.get(name, "")) for name in request.query_params}


def refused_page(request: Request[Any, Any, Any], tenant: Tenant, exc: RefusedError, sub_id: str = "") -> Page:
    """The page of a refusal: 403 (not allowed here) or 409 (not possible now)."""
    return render_page(
        request,
        "subscriptions/refused.html",
        tenant=tenant,
        title=_("Not available") if exc.status_code == 403 else _("Not changed"),
        active_nav="subscriptions",
        status_code=exc.status_code,
        message=exc.message,
        sub_id=sub_id,
    )


async def own(tenant: Tenant, customer: CustomerView, sub_id: str) -> store.StoredSubscription:
    """The customer's subscription ``sub_id``, or 404."""
    async with tenant_transaction(tenant.merchant.iso_id):
        try:
            return await service.owned(tenant, customer.id, subscription_id(sub_id))
        except SubscriptionNotFoundError as exc:
            raise NotFoundException() from exc


def done_redirect(sub_id: str, what: str) -> Redirect:
    """303 to the subscription's page, saying what was done."""
    return Redirect(f"{LIST_PATH}/{sub_id}?done={what}", status_code=303)
