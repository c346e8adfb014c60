"""Demo mode's mail viewer: what the :class:`~portal.mail.catcher.MailCatcher` received.

Mount :data:`DEMO_MAIL_ROUTES` only in demo mode. The pages are plain, self-contained HTML
(not themed) and answer 404 when the app has no catcher in ``app.state.mail_catcher``.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2
from litestar import MediaType, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from portal.mail.catcher import MAX_MESSAGES, MailCatcher
from portal.web.headers import content_security_policy
from portal.web.state import csp_nonce_of

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


def _catcher_of(request: Request[Any, Any, Any]) -> MailCatcher:
    catcher = request.app.state.get("mail_catcher")
    if not isinstance(catcher, MailCatcher):
        raise NotFoundException()
    return catcher


def _content(message: EmailMessage, subtype: str) -> str | None:
    """The decoded ``text/<subtype>`` body of ``message``, or ``None`` when it has none."""
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset or a broken encoding: show what there is
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    return content if isinstance(content, str) else None


def _page(
    request: Request[Any, Any, Any], template: str, *, response_headers: dict[str, str] | None = None, **values: Any
) -> Response[str]:
    html = _TEMPLATES.get_template(template).render(csp_nonce=csp_nonce_of(request), **values)
    # no-store: the pages show live sign-in links.
    return Response(html, media_type=MediaType.HTML, headers={"cache-control": "no-store", **(response_headers or {})})


def _preview_policy(nonce: str) -> dict[str, str]:
    """The app's policy with inline styles allowed, which the HTML preview needs.

    A ``srcdoc`` document inherits the policy of the page that embeds it, and emails are made
    of inline styles. Scripts stay off twice over: ``script-src`` and the iframe sandbox. With
    no nonce the app sends no policy, and neither does this page.
    """
    if not nonce:
        return {}
    return {"content-security-policy": content_security_policy(nonce, style_src="'self' 'unsafe-inline'")}


@get("/-/mail", name="demo_mail_list", include_in_schema=False)
async def mail_list(request: Request[Any, Any, Any]) -> Response[str]:
    """Demo mode only: the caught messages, newest first."""
    catcher = _catcher_of(request)
    return _page(request, "list.html", title="Caught mail", messages=catcher.messages, limit=MAX_MESSAGES)


@get("/-/mail/{index:int}", name="demo_mail_message", include_in_schema=False)
async def mail_message(request: Request[Any, Any, Any], index: FromPath[int]) -> Response[str]:
    """Demo mode only: one caught message with its headers, text and sandboxed HTML."""
    caught = _catcher_of(request).message(index)
    if caught is None:
        raise NotFoundException()
    message = caught.message
    text = _content(message, "plain")
    return _page(
        request,
        "message.html",
        response_headers=_preview_policy(csp_nonce_of(request)),
        title=str(message["Subject"] or "(no subject)"),
        caught=caught,
        headers=[(name, str(value)) for name, value in message.items()],
        text=text,
        html=_content(message, "html"),
        links=list(dict.fromkeys(_URL.findall(text or ""))),
    )


DEMO_MAIL_ROUTES = [mail_list, mail_message]
