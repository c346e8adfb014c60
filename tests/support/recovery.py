"""Payment recovery in tests: a merchant of its own per test, a subscription whose renewal declines, the worker's work.

Each :class:`Shop` is an ISO with one merchant (sandbox gateway, cards and payment recovery on,
unless told otherwise) made for one test, so its test clock and its cases are that test's alone.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from portal.billing import clock
from portal.billing.advance import advance_clock
from portal.billing.models import Subscription
from portal.db.engine import fetch, json_value
from portal.events.handlers import run_due_handlers
from portal.mail import MailCatcher
from portal.mail.catcher import CaughtMail
from portal.payments.sandbox import SandboxAdapter
from portal.platform import Platform
from portal.tasks.durable import run_due_tasks
from portal.tenancy.models import CustomerView, Tenant
from portal.testing import BASE_DOMAIN, apply_tenants
from portal_payment_recovery.schedule import queue_due
from support.billing import Ledger

SOFT_DECLINE, STOP_RECURRING, GOOD_CARD = "4000000000000341", "4000000000000259", "4111111111111111"
LINK = re.compile(r"(https?://[^\s\"<>]+/access/([A-Za-z0-9._~-]+))")


def tenant_file(slug: str, *, recovery: str | None = "", iso: str | None = None) -> str:
    """One ISO with merchant ``slug``; ``recovery`` is its plugin's settings line (``None``: plugin off)."""
    text = f'[[isos]]\nslug = "{iso or slug + "-iso"}"\nname = "Recovery ISO"\n\n'
    text += f'[[isos.merchants]]\nslug = "{slug}"\nname = "Bread & Co"\ntimezone = "America/New_York"\n'
    text += 'locale = "en-US"\n[isos.merchants.brand]\ncolor = "#2e7d32"\nsupport_email = "help@example.test"\n'
    text += '[isos.merchants.gateway]\nkey = "sandbox"\n[isos.merchants.plugins.cards]\n'
    if recovery is not None:
        text += f"[isos.merchants.plugins.payment_recovery]\n{recovery}\n"
    return text


@dataclass
class Shop:
    """A test's own merchant: its ledger, HTTP clients and the worker's work, run on demand."""

    platform: Platform
    ledger: Ledger
    mail: MailCatcher
    client_factory: Any

    @property
    def tenant(self) -> Tenant:
        return self.ledger.tenant

    @property
    def host(self) -> str:
        return f"{self.tenant.merchant.slug}.{BASE_DOMAIN}"

    async def now(self) -> datetime:
        return await clock.merchant_now(self.tenant.merchant.id, iso_id=self.tenant.merchant.iso_id)

    async def failing_subscription(
        self, number: str = SOFT_DECLINE, *, amount: int = 3900, plan: str = "Monthly Bread Box"
    ) -> tuple[CustomerView, Subscription, str]:
        """A customer whose trial ends in a day on a card that attaches but declines; the clock moved past it.

        Returns the customer, the subscription and the renewal invoice whose charge failed (the
        worker's handlers and tasks have run: recovery has acted).
        """
        customer = await self.ledger.customer()
        await self.ledger.card(customer, number)
        price = await self.ledger.price(amount, name=plan)
        now = await self.now()
        subscription = await self.ledger.subscribe(price, now=now, customer=customer, trial_end=now + timedelta(days=1))
        await self.advance(timedelta(days=1, hours=1))
        async with self.ledger.tx():
            rows = await fetch(
                "SELECT id FROM portal_billing_invoice WHERE merchant_id = $1 AND subscription_id = $2 "
                "AND status = 'open'",
                self.tenant.merchant.id,
                subscription.id,
            )
        assert len(rows) == 1, rows
        return customer, subscription, rows[0]["id"]

    async def advance(self, by: timedelta) -> None:
        """Move the clock (renewals and charges run), then run recovery's job and the worker until nothing is due."""
        await advance_clock(self.platform, self.tenant, await self.now() + by)
        await self.work()
        while await queue_due(self.platform, self.tenant.merchant.iso_id):  # as the job does, once a minute
            await self.work()

    async def work(self) -> None:
        """Run the ISO's due event handlers and tasks until none is left."""
        iso_id = self.tenant.merchant.iso_id
        for _ in range(100):
            ran = await run_due_handlers(self.platform.registry, iso_id)
            ran += await run_due_tasks(self.platform, iso_id, "recovery-tests")
            if not ran:
                return
        raise AssertionError("work kept coming")

    async def row(self, sql: str, *args: Any) -> dict[str, Any]:
        async with self.ledger.tx():
            rows = await fetch(sql, *args)
        assert len(rows) == 1, rows
        return dict(rows[0])

    async def case(self, invoice_id: str) -> dict[str, Any]:
        return await self.row(
            "SELECT * FROM recovery_case WHERE merchant_id = $1 AND invoice_id = $2",
            self.tenant.merchant.id,
            invoice_id,
        )

    async def events(self, customer_id: str, prefix: str = "recovery.") -> list[dict[str, Any]]:
        """The customer's audited events of one kind, oldest first."""
        async with self.ledger.tx():
            rows = await fetch(
                "SELECT type, data FROM portal_audit_event WHERE merchant_id = $1 AND customer_id = $2 "
                "AND type LIKE $3 ORDER BY seq",
                self.tenant.merchant.id,
                customer_id,
                prefix + "%",
            )
        return [{"type": row["type"], "data": json_value(row["data"])} for row in rows]

    async def attempts(self, invoice_id: str) -> list[dict[str, Any]]:
        async with self.ledger.tx():
            rows = await fetch(
                "SELECT outcome, order_id FROM portal_billing_payment_attempt "
                "WHERE merchant_id = $1 AND invoice_id = $2 ORDER BY attempt_number",
                self.tenant.merchant.id,
                invoice_id,
            )
        return [dict(row) for row in rows]

    def mails_to(self, email: str) -> list[CaughtMail]:
        return [caught for caught in self.mail.messages if email in caught.envelope_to]

    async def mail_to(self, email: str, subject: str, *, after: int = 0) -> CaughtMail:
        return await self.mail.wait_for(
            lambda caught: email in caught.envelope_to and subject in str(caught.message["Subject"]), after=after
        )


async def tokenize(shop: Shop, number: str) -> str:
    """A sandbox payment token for ``number``, as the hosted fields make one."""
    adapter = shop.platform.gateways.for_tenant(shop.tenant)
    assert isinstance(adapter, SandboxAdapter)
    body = {"tokenization_key": adapter.tokenization_key, "ccnumber": number, "ccexp": "12 / 39", "cvv": "123"}
    response = await shop.ledger.client.post("/sandbox-gateway/tokenize", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def land(shop: Shop, token: str) -> tuple[httpx.AsyncClient, httpx.Response]:
    """Open a link in a fresh client (a browser of its own) on the shop's host: the client and the answer."""
    client = shop.client_factory(shop.host)
    return client, await client.get(f"/access/{token}")


def link_in(caught: CaughtMail) -> tuple[str, str]:
    """The update link of an email (its plain-text part): ``(url, token)``."""
    text = caught.message.get_body(preferencelist=("plain",))
    assert text is not None
    found = LINK.search(text.get_content())
    assert found, "no link in the email"
    return found.group(1), found.group(2)


def text_of(caught: CaughtMail, subtype: str = "plain") -> str:
    part = caught.message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


async def make_shop(
    platform: Platform, mail: MailCatcher, client_factory: Any, tmp_path: Path, *, recovery: str | None = "", **kw: Any
) -> Shop:
    """A fresh merchant of a fresh ISO with ``recovery`` settings (``None``: the plugin off)."""
    slug = f"rec-{uuid.uuid4().hex[:8]}"
    await apply_tenants(platform, tenant_file(slug, recovery=recovery, **kw), tmp_path)
    tenant = await platform.tenants.resolve(f"{slug}.{BASE_DOMAIN}")
    assert tenant is not None
    return Shop(platform, Ledger(platform, tenant, client_factory(f"{slug}.{BASE_DOMAIN}")), mail, client_factory)


async def together(*calls: Any) -> list[Any]:
    """Run coroutines at the same time."""
    return list(await asyncio.gather(*calls))


def fresh_email() -> str:
    return f"jane-{secrets.token_hex(4)}@example.com"
