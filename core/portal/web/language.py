"""The footer's language switch: ``POST /language`` with ``language`` and the page to go back to."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from portal.i18n import LANGUAGES, gettext
from portal.web.middleware import cookie_of
from portal.web.render import render_page
from portal.web.sessions import COOKIE_NAME, set_session_locale
from portal.web.state import LANGUAGE_COOKIE, tenant_of

ONE_YEAR = 365 * 24 * 3600


def _back_to(path: str) -> str:
    """``path`` when it is a path on this host (``/invoices?status=open``), else the Overview."""
    if path.startswith("/") and not path.startswith(("//", "/\\")) and len(path) <= 2000 and path.isprintable():
        return path
    return "/"


@post("/language", name="language_switch", status_code=303, include_in_schema=False)
async def switch_language(
    request: Request[Any, Any, Any],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Write the portal in another language from now on (this browser, and this session)."""
    tenant = tenant_of(request)
    language = data.get("language", "")
    if language not in LANGUAGES:
        return render_page(
            request,
            "error.html",
            tenant=tenant,
            title=gettext("Unknown language"),
            status_code=400,
            detail=gettext("Choose one of the languages the list offers."),
        )
    token = cookie_of(request.scope, COOKIE_NAME)
    if token:
        await set_session_locale(tenant, token, language)
    response = Redirect(_back_to(data.get("next", "/")), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE, language, path="/", secure=True, httponly=True, samesite="lax", max_age=ONE_YEAR
    )
    return response


LANGUAGE_ROUTES = [switch_language]
