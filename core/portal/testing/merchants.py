"""Merchants of a test's own, made through the production paths: tenant files, API keys, access links.

``await portal_merchant(plugins=("notes",))`` applies a tenant file with a fresh ISO and a
sandbox merchant; the :class:`TestMerchant` it returns switches plugins, creates signed-in
customers (through the API and a real access link), API keys, webhook endpoints, cards on file,
reads the merchant's audit records and moves its test clock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
import pytest_asyncio

from portal.api.keys import create_api_key
from portal.api.webhooks import insert_endpoint
from portal.db.engine import tenant_transaction
from portal.events.signing import new_secret
from portal.payments import methods
from portal.payments.sandbox import SandboxAdapter
from portal.platform import Platform
from portal.tenancy.models import Tenant
from portal.testing.app import ClientFactory
from portal.testing.audit import AuditRecord, audit_records
from portal.testing.clock import TestClock
from portal.testing.customers import TestCustomer
from portal.testing.tenants import apply_tenants, locate_merchant
from portal.testing.toml import merchant_file
from portal.testing.webhooks import WebhookReceiver

TEST_CARD = "4111111111111111"
"""The sandbox's Visa test card that approves every charge (``docs/payments.md`` lists the others)."""


class TestMerchant:
    """A merchant of its own (and, unless shared, an ISO of its own) for one test."""

    __test__ = False

    def __init__(
        self,
        platform: Platform,
        clients: ClientFactory,
        folder: Path,
        iso: tuple[str, str, str],
        merchant: tuple[str, str, str],
        plugins: dict[str, tuple[bool, dict[str, Any]]],
    ) -> None:
        self.platform = platform
        self._clients = clients
        self._folder = folder
        self.iso_id, self.iso_slug, self.iso_name = iso
        self.merchant_id, self.slug, self.name = merchant
        self.plugins = plugins
        self.host = f"{self.slug}.{platform.settings.base_domain}"
        self.clock = TestClock(self)
        self._api: httpx.AsyncClient | None = None

    # --- plugins -----------------------------------------------------------------------------

    async def enable(self, plugin_key: str) -> None:
        """Turn a plugin on (with the settings it had), through the tenant file."""
        self.plugins[plugin_key] = (True, self.plugins.get(plugin_key, (True, {}))[1])
        await self._apply()

    async def disable(self, plugin_key: str) -> None:
        """Turn a plugin off, through the tenant file."""
        self.plugins[plugin_key] = (False, self.plugins.get(plugin_key, (False, {}))[1])
        await self._apply()

    async def configure(self, plugin_key: str, **settings: Any) -> None:
        """Replace a plugin's settings (and turn it on), through the tenant file."""
        self.plugins[plugin_key] = (True, settings)
        await self._apply()

    async def _apply(self) -> None:
        text = merchant_file((self.iso_slug, self.iso_name), (self.slug, self.name), self.plugins)
        await apply_tenants(self.platform, text, self._folder)

    async def tenant(self) -> Tenant:
        """The merchant as a request on its host sees it (plugins, settings, gateway)."""
        tenant = await self.platform.tenants.load_merchant(self.iso_id, self.merchant_id)
        assert tenant is not None
        return tenant

    # --- clients, keys, customers ------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        """A new client on the merchant's host, not signed in."""
        return self._clients(self.host)

    async def api_key(self, scopes: Iterable[str] | None = None) -> str:
        """A new merchant API key (every scope, core's and the plugins', unless ``scopes`` is given)."""
        async with tenant_transaction(self.iso_id):
            _, secret = await create_api_key(
                self.iso_id, self.merchant_id, name="test", scopes=scopes, known=self.platform.registry.api_scopes
            )
        return secret

    async def api_client(self, scopes: Iterable[str] | None = None) -> httpx.AsyncClient:
        """A client of the merchant API (``/api/v1`` on the merchant's host) with a key of ``scopes``.

        Without ``scopes`` the client is shared by the merchant's helpers and has every scope.
        """
        if scopes is None and self._api is not None:
            return self._api
        client = self._clients(self.host)
        client.base_url = httpx.URL(f"https://{self.host}/api/v1")
        client.headers["authorization"] = f"Bearer {await self.api_key(scopes)}"
        if scopes is None:
            self._api = client
        return client

    async def customer(self, email: str | None = None, *, name: str = "Test Customer") -> TestCustomer:
        """A new customer (``POST /api/v1/customers``) signed in with a portal link it opens."""
        email = email or f"c-{uuid.uuid4().hex[:10]}@example.com"
        api = await self.api_client()
        created = await api.post("/customers", json={"email": email, "name": name})
        assert created.status_code == 201, created.text
        cid = str(created.json()["id"])
        return TestCustomer(self, cid, email, name, await self.sign_in(cid))

    async def sign_in(self, customer_id: str) -> httpx.AsyncClient:
        """A client signed in as the customer: a portal link from the API, opened on the host."""
        api = await self.api_client()
        minted = await api.post("/portal-sessions", json={"customer": customer_id})
        assert minted.status_code == 201, minted.text
        client = self.client()
        landed = await client.get(str(minted.json()["url"]).removeprefix(f"https://{self.host}"))
        assert landed.status_code == 303, f"the portal link answered {landed.status_code}: {landed.text[:500]}"
        return client

    # --- webhooks, audit, cards --------------------------------------------------------------

    async def webhook_endpoint(self, receiver: WebhookReceiver, events: Iterable[str] | None = None) -> str:
        """Subscribe ``receiver`` to the merchant's events (every type unless ``events``); its id.

        Saved as ``POST /api/v1/webhook-endpoints`` saves it (``insert_endpoint``), without the API's
        URL check, which refuses loopback URLs unless ``webhook_allow_private`` is set (test
        settings do not set it).
        """
        event_types = list(dict.fromkeys(events or ()))
        unknown = sorted(set(event_types) - set(self.platform.registry.event_types))
        assert not unknown, f"unknown event types {unknown}"
        secret = new_secret()
        row = await insert_endpoint(self.iso_id, self.merchant_id, receiver.url, "test receiver", event_types, secret)
        endpoint_id = str(row["id"])
        receiver.secrets.append(secret)
        receiver.iso_ids.add(self.iso_id)
        receiver.endpoint_ids.append(endpoint_id)
        return endpoint_id

    async def audit(self, action: str | None = None) -> list[AuditRecord]:
        """The merchant's audit records (of ``action``), oldest first."""
        return await audit_records(self.iso_id, self.merchant_id, action)

    async def card_on_file(self, customer: TestCustomer, number: str = TEST_CARD) -> methods.PaymentMethod:
        """A sandbox test card tokenized and vaulted as the customer's default payment method."""
        tenant = await self.tenant()
        adapter = self.platform.gateways.for_tenant(tenant)
        assert isinstance(adapter, SandboxAdapter), "cards on file need the sandbox gateway"
        expiry = f"12 / {(datetime.now(UTC).year + 3) % 100:02d}"
        body = {"tokenization_key": adapter.tokenization_key, "ccnumber": number, "ccexp": expiry, "cvv": "123"}
        response = await self.client().post("/sandbox-gateway/tokenize", json=body)
        assert response.status_code == 200, response.text
        token = str(response.json()["token"])
        attached = await methods.attach(self.platform.gateways, tenant, customer.view, token, make_default=True)
        return attached.method


class MerchantFactory(Protocol):
    """The ``portal_merchant`` fixture: ``await portal_merchant(plugins=..., settings=..., iso=...)``."""

    def __call__(
        self,
        plugins: Iterable[str] = (),
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        iso: TestMerchant | None = None,
    ) -> Awaitable[TestMerchant]:
        """Create a merchant (and its ISO, unless ``iso`` names a merchant whose ISO to share)."""
        ...


@pytest_asyncio.fixture(loop_scope="session")
async def portal_merchant(
    portal_platform: Platform, portal_client: ClientFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[MerchantFactory]:
    """Make merchants of the test's own: await the fixture, ``plugins=("notes",)`` say.

    Each call applies a tenant file with a new sandbox merchant (host ``<slug>.portal.localhost``)
    in a new ISO, or in the ISO of ``iso`` (another :class:`TestMerchant`). ``plugins`` are turned
    on, with ``settings[key]`` as their settings.
    """
    folder = tmp_path_factory.mktemp("tenants")

    async def create(
        plugins: Iterable[str] = (),
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        iso: TestMerchant | None = None,
    ) -> TestMerchant:
        suffix = uuid.uuid4().hex[:10]
        iso_slug, iso_name = (iso.iso_slug, iso.iso_name) if iso else (f"iso-{suffix}", f"Test ISO {suffix}")
        slug, name = f"m-{suffix}", f"Test Merchant {suffix}"
        chosen = {key: (True, dict((settings or {}).get(key, {}))) for key in plugins}
        unknown = sorted(set(settings or {}) - set(chosen))
        assert not unknown, f"settings for plugins not turned on: {unknown}"
        await apply_tenants(portal_platform, merchant_file((iso_slug, iso_name), (slug, name), chosen), folder)
        iso_id, merchant_id = await locate_merchant(slug)
        return TestMerchant(
            portal_platform, portal_client, folder, (iso_id, iso_slug, iso_name), (merchant_id, slug, name), chosen
        )

    yield create
