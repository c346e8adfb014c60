"""The durable task that emails a sign-in link, run by the worker so every answer to ``/login`` is alike."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from portal.access.links import issue_link
from portal.db.engine import fetch, tenant_transaction
from portal.mail.send import send_email
from portal.tasks.durable import TaskRun, durable_task
from portal.tenancy.models import normalize_email

if TYPE_CHECKING:
    from portal.platform import Platform

log = logging.getLogger(__name__)

LOGIN_LINK_TTL = timedelta(minutes=15)
RETRY_DELAYS = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=5))
"""A sign-in email is worth retrying only while the customer still waits for it (about 8 minutes)."""


@durable_task("portal.send_login_link", retry_delays=RETRY_DELAYS)
async def send_login_link(task: TaskRun) -> None:
    """Email a fresh single-use link when the task's ``email`` is a customer of the merchant; else nothing."""
    locale = task.args.get("locale")
    await email_login_link(
        task.platform, task.iso_id, str(task.merchant_id), str(task.args["email"]), str(locale) if locale else None
    )


async def email_login_link(
    platform: Platform, iso_id: str, merchant_id: str, email: str, locale: str | None = None
) -> bool:
    """Email a fresh single-use link to ``email`` if it is a customer of the merchant; return whether one went.

    The email, and the pages the link opens, are in ``locale`` (the language the sign-in page was
    read in) when given, else in the customer's own.
    """
    tenant = await platform.tenants.load_merchant(iso_id, merchant_id)
    if tenant is None:
        return False
    async with tenant_transaction(iso_id):
        rows = await fetch(
            "SELECT id, email, name, locale FROM portal_customer WHERE merchant_id = $1 AND email_normalized = $2",
            merchant_id,
            normalize_email(email),
        )
        if not rows:
            return False
        customer = rows[0]
        locale = locale or customer["locale"]
        link = await issue_link(
            platform.settings,
            tenant,
            customer["id"],
            purpose="portal",
            expires_in=LOGIN_LINK_TTL,
            source="email",
            locale=locale,
        )
    context = {
        "url": link.url,
        "expires_minutes": int(LOGIN_LINK_TTL.total_seconds() // 60),
        "customer_name": customer["name"],
    }
    await send_email(
        platform, tenant.merchant, to=customer["email"], template="login_link", context=context, locale=locale
    )
    log.info("sign-in link sent for merchant %s", tenant.merchant.slug)
    return True
