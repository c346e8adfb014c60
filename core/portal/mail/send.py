"""Send one merchant-branded email rendered from the merchant's theme (for plugins, through the SDK)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from portal.access.links import public_origin
from portal.mail.message import compose
from portal.mail.render import render_email
from portal.mail.sender import Mailer
from portal.tenancy.models import MerchantView

if TYPE_CHECKING:
    from portal.platform import Platform


async def send_email(
    platform: Platform,
    merchant: MerchantView,
    *,
    to: str,
    template: str,
    context: Mapping[str, Any],
    locale: str | None = None,
) -> str:
    """Render ``template`` and send it to ``to``; the subject (see :func:`portal.mail.render.render_email`).

    It is written in ``locale`` (the customer's, ``portal_customer.locale``) when that is a
    supported language, else in the merchant's. Call it outside any transaction (it waits on the
    mail server) and from a durable task, so a refused or unreachable server (``MailError``) is
    retried on the task's schedule. The templates also receive ``portal_origin``, the merchant's
    portal as ``scheme://host[:port]``, to write site-relative addresses (a ``/static/...`` logo) in full.
    """
    values = {"portal_origin": public_origin(platform.settings, merchant), **context}
    subject, text, html = render_email(
        platform.themes, merchant, template, values, catalogs=platform.catalogs, locale=locale
    )
    message = compose(
        merchant=merchant, to=to, subject=subject, text=text, html=html, mail_from=platform.settings.mail_from
    )
    await Mailer(platform.settings).send(message)
    return subject
