"""Telling a merchant that one of its webhook endpoints was disabled: an email to its support address."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from portal.mail import MailError
from portal.mail.send import send_email

if TYPE_CHECKING:
    from portal.platform import Platform

log = logging.getLogger(__name__)


async def notify_endpoint_disabled(platform: Platform, iso_id: str, merchant_id: str, url: str, reason: str) -> None:
    """Email the merchant's support address that the endpoint at ``url`` was disabled (log when it has none).

    Never raises: the endpoint is disabled whether or not the email goes out.
    """
    try:
        tenant = await platform.tenants.load_merchant(iso_id, merchant_id)
        if tenant is None:
            log.warning("webhook endpoint of merchant %s disabled; the merchant is not active", merchant_id)
            return
        merchant = tenant.merchant
        to = merchant.brand.support_email
        if not to:
            log.warning("webhook endpoint of merchant %s disabled; no support email to notify", merchant.slug)
            return
        await send_email(platform, merchant, to=to, template="webhook_disabled", context={"url": url, "reason": reason})
    except (MailError, ValueError) as exc:
        log.error("could not email merchant %s about a disabled webhook endpoint: %s", merchant_id, exc)
    except Exception:
        log.exception("could not email merchant %s about a disabled webhook endpoint", merchant_id)
