"""Customer-facing access pages: landing on a link, asking for a fresh one, email sign-in."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect

from portal.access.actors import customer_actor
from portal.access.flows import resolve_flow
from portal.access.links import LinkRefusedError, authenticate, is_revoked, redeem
from portal.access.login_task import send_login_link
from portal.access.ratelimit import allow, bucket_key
from portal.access.tokens import Claims
from portal.db.engine import fetch, tenant_transaction
from portal.events.bus import emit
from portal.events.core_types import SessionPayload
from portal.i18n import N_, current_locale, gettext
from portal.metrics import LINKS_REFUSED
from portal.tasks.durable import queue_task
from portal.tenancy.models import normalize_email
from portal.web.middleware import cookie_of
from portal.web.render import render_page
from portal.web.sessions import COOKIE_NAME, end_session, start_session
from portal.web.state import platform_of, session_of, tenant_of

log = logging.getLogger(__name__)

FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)

PROBLEMS = {
    "invalid": (N_("This link is not valid"), N_("It may have been copied incompletely. You can ask for a new one.")),
    "expired": (N_("This link has expired"), N_("Links stop working after a while to keep your account safe.")),
    "not_yet_valid": (N_("This link is not valid yet"), N_("Please try again in a minute.")),
    "revoked": (N_("This link was cancelled"), N_("The merchant cancelled it. You can ask for a new one.")),
    "used": (N_("This link was already used"), N_("Each sign-in link works once. You can ask for a new one.")),
    "fulfilled": (N_("This link was already used"), N_("The task it was for is done. You can ask for a new one.")),
}
"""Why a link did not sign the customer in: the page's title and sentence (translated when shown)."""


RESENDABLE = frozenset({"expired", "used", "fulfilled"})
"""Refusals after which the customer may ask for a fresh link in one click (never a revoked one)."""


def _set_session_cookie(response: Response[Any], token: str, max_age: float) -> None:
    response.set_cookie(COOKIE_NAME, token, path="/", secure=True, httponly=True, samesite="lax", max_age=int(max_age))


@get("/access/{token:str}", name="access_land", include_in_schema=False)
async def land(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    """Exchange a link for a session and redirect to a URL without the token."""
    platform = platform_of(request)
    tenant = tenant_of(request)
    settings = platform.settings
    old = cookie_of(request.scope, COOKIE_NAME)
    try:  # one transaction: the link's use, the new session and its audit record stand or fall together
        async with tenant_transaction(tenant.merchant.iso_id):
            redeemed = await redeem(tenant, token)
            claims = redeemed.claims
            owner = platform.registry.purpose_owners.get(claims.purpose)
            if owner is not None and owner not in tenant.enabled_plugins:
                raise LinkRefusedError("invalid")  # the plugin giving the purpose meaning is off here
            if old:
                await end_session(tenant, old)
            session = await start_session(
                tenant,
                claims.customer,
                timedelta(seconds=settings.session_absolute_timeout),
                link_id=redeemed.link_id,
                flow=claims.flow,
                return_url=redeemed.return_url,
                locale=redeemed.locale,
            )
            await emit(
                tenant.merchant,
                "portal_session.started",
                SessionPayload(customer=claims.customer, link=claims.jti, purpose=claims.purpose, flow=claims.flow),
                actor=customer_actor(request, claims.customer),
                target=("customer", claims.customer),
                customer_id=claims.customer,
                enabled_plugins=tenant.enabled_plugins,
                registry=platform.registry,
            )
            on_landing = platform.registry.link_purposes[claims.purpose].on_landing
            if on_landing is not None:
                await on_landing(request, tenant, claims)
    except LinkRefusedError as refusal:
        log.info("link refused on %s: %s", tenant.merchant.slug, refusal.reason)
        LINKS_REFUSED.labels(reason=refusal.reason).inc()
        title, detail = PROBLEMS[refusal.reason]
        return render_page(
            request,
            "access/link_problem.html",
            tenant=tenant,
            title=gettext(title),
            status_code=410 if refusal.reason in ("expired", "used", "revoked", "fulfilled") else 400,
            detail=gettext(detail),
            can_resend=refusal.claims is not None and refusal.reason in RESENDABLE,
            token=token if refusal.claims is not None and refusal.reason in RESENDABLE else "",
        )
    purpose = platform.registry.link_purposes.get(claims.purpose)
    default_flow = purpose.default_flow if purpose is not None else None
    target = resolve_flow(platform.registry.link_flows, tenant, claims.flow or default_flow)
    response = Redirect(target, status_code=303)
    _set_session_cookie(response, session, settings.session_absolute_timeout)
    return response


@post("/access/resend", name="access_resend", include_in_schema=False, status_code=200)
async def resend(request: Request[Any, Any, Any], data: Annotated[dict[str, str], FormBody]) -> Response[str]:
    """Email a fresh link to the customer an expired or used (but genuine) link was for."""
    tenant = tenant_of(request)
    token = data.get("token", "")
    customer_email: str | None = None
    claims: Claims | None
    async with tenant_transaction(tenant.merchant.iso_id):
        try:
            claims = await authenticate(tenant, token, datetime.now(UTC))
        except LinkRefusedError as refusal:
            claims = refusal.claims if refusal.reason in RESENDABLE else None
        if claims is not None and not await is_revoked(tenant, claims.jti):
            rows = await fetch(
                "SELECT email FROM portal_customer WHERE id = $1 AND merchant_id = $2",
                claims.customer,
                tenant.merchant.id,
            )
            customer_email = rows[0]["email"] if rows else None
    if customer_email:
        return await _request_link(request, customer_email)
    return render_page(request, "access/login_sent.html", tenant=tenant, title=gettext("Check your email"))


async def _request_link(request: Request[Any, Any, Any], email: str) -> Response[str]:
    """Queue a sign-in email (or nothing, for unknown addresses); answer the same either way."""
    platform = platform_of(request)
    tenant = tenant_of(request)
    settings = platform.settings
    iso_id, merchant_id = tenant.merchant.iso_id, tenant.merchant.id
    client = request.client.host if request.client else "unknown"
    async with tenant_transaction(iso_id):
        per_ip = await allow(iso_id, bucket_key("login-ip", merchant_id, client), settings.login_rate_per_ip)
        per_email = await allow(
            iso_id, bucket_key("login-email", merchant_id, normalize_email(email)), settings.login_rate_per_email
        )
        if per_ip and per_email:
            await queue_task(send_login_link, {"email": email, "locale": current_locale()}, merchant_id=merchant_id)
    if not (per_ip and per_email):
        return render_page(
            request,
            "error.html",
            tenant=tenant,
            title=gettext("Too many requests"),
            status_code=429,
            detail=gettext("Please wait a while before asking for another link."),
            headers={"retry-after": "3600"},
        )
    return render_page(request, "access/login_sent.html", tenant=tenant, title=gettext("Check your email"))


@get("/login", name="login_form", include_in_schema=False)
async def login_form(request: Request[Any, Any, Any]) -> Response[str]:
    """Ask for an email address to send a sign-in link to."""
    return render_page(request, "access/login.html", tenant=tenant_of(request), title=gettext("Sign in"), error="")


@post("/login", name="login_submit", include_in_schema=False, status_code=200)
async def login_submit(request: Request[Any, Any, Any], data: Annotated[dict[str, str], FormBody]) -> Response[str]:
    """Send a link if the address is a customer's; the answer never tells whether it is."""
    email = data.get("email", "").strip()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        return render_page(
            request,
            "access/login.html",
            tenant=tenant_of(request),
            title=gettext("Sign in"),
            status_code=400,
            error=gettext("Enter the email address you use with us, like name@example.com."),
            email=email,
        )
    return await _request_link(request, email)


@post("/logout", name="logout", status_code=303, include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    """End the session server-side and forget the cookie."""
    tenant = tenant_of(request)
    token = cookie_of(request.scope, COOKIE_NAME)
    session = session_of(request)
    if token:
        async with tenant_transaction(tenant.merchant.iso_id):
            await end_session(tenant, token)
            if session is not None:
                customer = session.customer.id
                await emit(
                    tenant.merchant,
                    "portal_session.ended",
                    SessionPayload(customer=customer, link=None, purpose=None, flow=session.flow),
                    actor=customer_actor(request, customer),
                    target=("customer", customer),
                    customer_id=customer,
                    enabled_plugins=tenant.enabled_plugins,
                    registry=platform_of(request).registry,
                )
    response = Redirect("/signed-out", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@get("/signed-out", name="signed_out", include_in_schema=False)
async def signed_out(request: Request[Any, Any, Any]) -> Response[str]:
    """Confirm the customer is signed out, with a way to sign in again (for anyone who opens it)."""
    return render_page(request, "access/signed_out.html", tenant=tenant_of(request), title=gettext("Signed out"))


ACCESS_ROUTES = [land, resend, login_form, login_submit, logout, signed_out]
