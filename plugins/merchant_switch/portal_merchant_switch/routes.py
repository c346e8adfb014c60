"""The switch page (``GET /switch``) and the switch itself (``POST /switch/{merchant_id}``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from portal.sdk import (
    SESSION_COOKIE,
    MerchantView,
    allow_form_targets,
    customer_actor,
    customer_of,
    emit,
    end_session,
    issue_link,
    normalize_email,
    platform_of,
    public_origin,
    render_page,
    tenant_of,
    tenant_transaction,
)
from portal.sdk import gettext as _
from portal_merchant_switch import header, records
from portal_merchant_switch.events import SwitchedOut
from portal_merchant_switch.settings import KEY, MerchantSwitchSettings
from portal_merchant_switch.siblings import accounts, others

PURPOSE = "switch"


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """A sibling as the switch page shows it."""

    merchant: MerchantView
    summary: str
    """``Active · 2 subscriptions``: the account's state and what other plugins say about it."""


@get("/switch", name="merchant_switch_page")
async def switch_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The customer's accounts at this ISO's merchants, this one marked, each other with a Switch button."""
    tenant, customer = tenant_of(request), customer_of(request)
    platform = platform_of(request)
    iso_id, email = tenant.merchant.iso_id, normalize_email(customer.email)
    shown: list[Account] = []
    async with tenant_transaction(iso_id):
        found = await accounts(iso_id, email)
        header.remember(iso_id, email, found)
        for sibling in others(found, tenant.merchant.id):
            target = await platform.tenants.merchant(iso_id, sibling.merchant_id, max_age=header.TTL)
            if target is None or KEY not in target.enabled_plugins:
                continue
            parts = await platform.registry.account_summary(target, sibling.customer_id)
            shown.append(Account(merchant=target.merchant, summary=" · ".join([_("Active"), *parts])))
    allow_form_targets(request, tuple(public_origin(platform.settings, a.merchant) for a in shown))
    return render_page(
        request,
        "merchant_switch/switch.html",
        tenant=tenant,
        title=_("Switch merchant"),
        email=customer.email,
        accounts=shown,
    )


@post("/switch/{merchant_id:str}", name="merchant_switch_go", status_code=303)
async def switch(request: Request[Any, Any, Any], merchant_id: FromPath[str]) -> Response[Any]:
    """Re-check the sibling, mint a one-use ``switch`` link at the target and send the customer there."""
    tenant, customer = tenant_of(request), customer_of(request)
    platform = platform_of(request)
    settings: MerchantSwitchSettings = tenant.plugin_settings[KEY]
    iso_id, email = tenant.merchant.iso_id, normalize_email(customer.email)
    cookie = request.cookies.get(SESSION_COOKIE)
    ending = settings.end_session_on_switch and cookie is not None
    async with tenant_transaction(iso_id):
        found = await accounts(iso_id, email)
        header.remember(iso_id, email, found)
        sibling = next((s for s in others(found, tenant.merchant.id) if s.merchant_id == merchant_id), None)
        target = await platform.tenants.load_merchant(iso_id, sibling.merchant_id) if sibling else None
        if sibling is None or target is None or KEY not in target.enabled_plugins:
            raise NotFoundException(detail=_("There is no such account to switch to."))
        link = await issue_link(platform.settings, target, sibling.customer_id, purpose=PURPOSE, source="switch")
        switch_id = await records.record(
            iso_id,
            from_merchant=tenant.merchant.id,
            from_customer=customer.id,
            to_merchant=target.merchant.id,
            to_customer=sibling.customer_id,
            link_id=link.id,
        )
        await emit(
            tenant.merchant,
            "customer.switched_out",
            SwitchedOut(id=switch_id, customer=customer.id, to_merchant_name=target.merchant.name),
            actor=customer_actor(request, customer.id),
            target=("customer", customer.id),
            customer_id=customer.id,
            enabled_plugins=tenant.enabled_plugins,
            registry=platform.registry,
        )
        if ending and cookie is not None:
            await end_session(tenant, cookie)
    response: Response[Any] = Redirect(link.url, status_code=303)
    if ending:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


SWITCH_ROUTES = [switch_page, switch]
