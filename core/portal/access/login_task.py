"""The task that emails a sign-in link, run by the worker so every answer to ``/login`` is alike."""

from __future__ import annotations

import logging
from datetime import timedelta

from taskiq import async_shared_broker

from portal.access.links import issue_link
from portal.db.engine import fetch, tenant_transaction
from portal.mail import Mailer, compose, render_email
from portal.tasks.runtime import current_platform
from portal.tenancy.models import normalize_email

log = logging.getLogger(__name__)

LOGIN_LINK_TTL = timedelta(minutes=15)


@async_shared_broker.task(task_name="portal.send_login_link")
async def send_login_link(iso_id: str, merchant_id: str, email: str) -> bool:
    """Email a fresh single-use link when ``email`` is a customer of the merchant; else nothing."""
    platform = current_platform()
    tenant = await platform.tenants.load_merchant(iso_id, merchant_id)
    if tenant is None:
        return False
    async with tenant_transaction(iso_id):
        rows = await fetch(
            "SELECT id, email, name FROM portal_customer WHERE merchant_id = $1 AND email_normalized = $2",
            merchant_id,
            normalize_email(email),
        )
        if not rows:
            return False
        customer = rows[0]
        link = await issue_link(
            platform.settings, tenant, customer["id"], purpose="portal", expires_in=LOGIN_LINK_TTL, source="email"
        )
    subject, text, html = render_email(
        platform.themes,
        tenant.merchant,
        "login_link",
        {
            "url": link.url,
            "expires_minutes": int(LOGIN_LINK_TTL.total_seconds() // 60),
            "customer_name": customer["name"],
        },
    )
    message = compose(
        merchant=tenant.merchant,
        to=customer["email"],
        subject=subject,
        text=text,
        html=html,
        mail_from=platform.settings.mail_from,
    )
    await Mailer(platform.settings).send(message)
    log.info("sign-in link sent for merchant %s", tenant.merchant.slug)
    return True
