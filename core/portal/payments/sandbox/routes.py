"""The sandbox gateway's web side, on each merchant host that uses it.

``/sandbox-gateway/collect.js`` (the Collect.js API for the merchant page), the field frames
and their script, and ``POST /sandbox-gateway/tokenize``, which turns the card the frames hold
into a single-use payment token. Everything answers 404 where the merchant uses another gateway.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import FromPath

from portal.access.ratelimit import allow, bucket_key
from portal.db.engine import tenant_transaction
from portal.payments.sandbox import store
from portal.payments.sandbox.adapter import utc_now
from portal.payments.sandbox.cards import CardDetails, InvalidFieldsError, check_card
from portal.payments.sandbox.frames import FIELD_SPECS, instance_id, merchant_css, render_field
from portal.payments.sandbox.settings import SandboxSettings, sandbox_settings_of, tokenization_key
from portal.tenancy.models import Tenant
from portal.web.errors import problem_response
from portal.web.headers import content_security_policy
from portal.web.input_policy import BODY_OPTION
from portal.web.state import csp_nonce_of, tenant_of

STATIC = Path(__file__).resolve().parent / "static"
COLLECT_JS = (STATIC / "collect.js").read_bytes()
FIELD_JS = (STATIC / "field.js").read_bytes()
JAVASCRIPT = "text/javascript; charset=utf-8"
TOKEN_LIFETIME = timedelta(hours=24)
KEY_HEADER = "x-tokenization-key"


class TokenizeRequest(msgspec.Struct, kw_only=True):
    """What the card number frame sends: the tokenization key and the three field values."""

    tokenization_key: Annotated[str, msgspec.Meta(max_length=200)] = ""
    ccnumber: Annotated[str, msgspec.Meta(max_length=40)] = ""
    ccexp: Annotated[str, msgspec.Meta(max_length=20)] = ""
    cvv: Annotated[str, msgspec.Meta(max_length=10)] | None = None
    """None when the form has no security code field."""
    cvv_required: bool = False


def _sandbox_tenant(request: Request[Any, Any, Any]) -> tuple[Tenant, SandboxSettings]:
    """The merchant and its sandbox settings; 404 where the merchant uses no sandbox gateway."""
    tenant = tenant_of(request)
    settings = sandbox_settings_of(tenant)
    if settings is None:
        raise NotFoundException()
    return tenant, settings


def _key_matches(given: str, tenant: Tenant, settings: SandboxSettings) -> bool:
    expected = tokenization_key(settings, tenant.merchant)
    return hmac.compare_digest(given.encode(), expected.encode())


def _script(body: bytes) -> Response[bytes]:
    return Response(body, media_type=JAVASCRIPT, headers={"cache-control": "public, max-age=300"})


@get("/sandbox-gateway/collect.js", name="sandbox_collect_js", include_in_schema=False)
async def collect_js(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The Collect.js-compatible script merchant pages load."""
    _sandbox_tenant(request)
    return _script(COLLECT_JS)


@get("/sandbox-gateway/field.js", name="sandbox_field_js", include_in_schema=False)
async def field_js(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The script inside each field frame."""
    _sandbox_tenant(request)
    return _script(FIELD_JS)


@get("/sandbox-gateway/fields/{field:str}", name="sandbox_field", include_in_schema=False)
async def field_frame(request: Request[Any, Any, Any], field: FromPath[str]) -> Response[str]:
    """One field frame: ``ccnumber``, ``ccexp`` or ``cvv``, framed only by pages of this host."""
    tenant, settings = _sandbox_tenant(request)
    spec = FIELD_SPECS.get(field)
    if spec is None:
        raise NotFoundException()
    query = request.query_params
    key = query.get("key") or ""
    if not _key_matches(key, tenant, settings):
        raise NotAuthorizedException(detail="The tokenization key is not valid here.")
    nonce = csp_nonce_of(request)
    html = render_field(
        spec,
        title=str(query.get("title") or spec.title)[:100],
        placeholder=str(query.get("placeholder", spec.placeholder))[:60],
        css=merchant_css(query.get("css") or ""),
        lang=tenant.merchant.locale.replace("_", "-"),
        nonce=nonce,
        instance=instance_id(query.get("instance") or ""),
        tokenization_key=key,
        focus_color=tenant.merchant.brand.text,
        focus_color_dark=tenant.merchant.brand.text_dark,
    )
    ancestors = tenant.merchant.frame_ancestors
    headers = {
        "content-security-policy": content_security_policy(nonce, ("'self'", *ancestors)),
        "cache-control": "no-store",
    }
    if not ancestors:
        headers["x-frame-options"] = "SAMEORIGIN"
    return Response(html, media_type=MediaType.HTML, headers=headers)


def collect_response(token: str, details: CardDetails) -> dict[str, Any]:
    """The object Collect.js hands the page's ``callback``: the token and the masked card."""
    return {
        "tokenType": "inline",
        "token": token,
        "card": {
            "number": details.masked,
            "bin": details.bin,
            "exp": details.exp,
            "type": details.brand,
            "hash": "",
        },
        "check": {"name": None, "account": None, "hash": None, "aba": None},
        "wallet": {"cardDetails": None, "shippingAddress": None, "billingAddress": None, "email": None},
    }


@post(
    "/sandbox-gateway/tokenize",
    name="sandbox_tokenize",
    include_in_schema=False,
    status_code=200,
    opt={"csrf_exempt": True, BODY_OPTION: "json"},  # it decodes the raw body as JSON itself
)
async def tokenize(request: Request[Any, Any, Any]) -> Response[Any]:
    """Card fields (JSON) to a single-use payment token valid for 24 hours.

    Keyed by the merchant's public tokenization key (in the body or the ``X-Tokenization-Key``
    header) rather than a CSRF token, like NMI's endpoint. 401 for a wrong key, 422 with
    ``errors`` (field name to message) for invalid fields and numbers that are not test cards,
    429 after ``tokenize_limit_per_hour`` requests from one client address in an hour.
    """
    tenant, settings = _sandbox_tenant(request)
    try:
        data = msgspec.json.decode(await request.body(), type=TokenizeRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return problem_response(400, f"The request is not valid: {exc}")
    given = data.tokenization_key or request.headers.get(KEY_HEADER, "")
    if not _key_matches(given, tenant, settings):
        return problem_response(401, "The tokenization key is not valid for this merchant.")
    merchant = tenant.merchant
    client = request.client.host if request.client else "unknown"
    now = utc_now()
    token, details, errors = "", None, {}
    async with tenant_transaction(merchant.iso_id):
        bucket = bucket_key("sandbox-tokenize", merchant.id, client)
        allowed = await allow(merchant.iso_id, bucket, settings.tokenize_limit_per_hour, now=now)
        if allowed:
            try:
                details = check_card(
                    data.ccnumber, data.ccexp, data.cvv, today=now.date(), cvv_required=data.cvv_required
                )
            except InvalidFieldsError as exc:
                errors = exc.errors
            else:
                token = await store.insert_token(
                    merchant.iso_id, merchant.id, details, now=now, expires_at=now + TOKEN_LIFETIME
                )
    if not allowed:
        response = problem_response(429, "Too many card details were sent. Please wait and try again.")
        response.headers["retry-after"] = "3600"
        return response
    if details is None:
        return problem_response(422, "Some card details are not valid.", extra={"errors": errors})
    return Response(collect_response(token, details), headers={"cache-control": "no-store"})


SANDBOX_ROUTES = [collect_js, field_js, field_frame, tokenize]
