"""``portal.testing``: the test kit for the platform and its plugins, a pytest plugin.

Installing ``portal-core`` registers it with pytest (entry point ``portal.testing`` in the
``pytest11`` group), so a plugin package's tests get its fixtures with no ``conftest.py`` line;
``pytest_plugins = ["portal.testing"]`` keeps working. It also makes ``asyncio_mode = "auto"``
and the session event loop for async tests and fixtures the defaults (a project's own settings
win). ``docs/testing_plugins.md`` documents every fixture and helper.

Database: ``--portal-db-url`` or ``PORTAL_TEST_DATABASE_URL`` (an owner connection to any
database of the server; default ``postgresql://postgres@127.0.0.1:5432/postgres``), or
``--portal-embedded`` / ``PORTAL_TEST_EMBEDDED=1`` for an embedded PostgreSQL. Each test process
gets a fresh database (parallel-safe under pytest-xdist), migrated with core and every plugin. A
server that does not answer fails the run; nothing is skipped.
"""

from __future__ import annotations

import pytest

from portal.testing.app import (
    BASE_DOMAIN,
    ClientFactory,
    portal_app,
    portal_client,
    portal_mail,
    portal_platform,
    portal_plugins,
    portal_settings,
    resolve_loopback_only,
)
from portal.testing.asyncio_settings import declare_defaults
from portal.testing.audit import AuditRecord, audit_records
from portal.testing.clock import TestClock
from portal.testing.customers import TestCustomer
from portal.testing.database import add_options, portal_database, portal_server_dsn, scratch_database
from portal.testing.imports import assert_imports_only_sdk
from portal.testing.leaks import ID, Foreign, ForeignIds, assert_no_cross_tenant_leak, assert_not_found, csrf_token
from portal.testing.merchants import TEST_CARD, MerchantFactory, TestMerchant, portal_merchant
from portal.testing.tables import assert_tenant_table
from portal.testing.tenants import apply_tenants, customer_id, locate_merchant, portal_sign_in, sign_in
from portal.testing.webhooks import Delivery, SignatureError, WebhookReceiver, verify_signature, webhook_receiver


def pytest_addoption(parser: pytest.Parser) -> None:
    """The database options, and the asyncio defaults (when loaded after pytest-asyncio)."""
    add_options(parser)
    declare_defaults(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """The asyncio defaults again, now that every installed plugin (pytest-asyncio too) declared its options."""
    declare_defaults(parser)


__all__ = [
    "BASE_DOMAIN",
    "ID",
    "TEST_CARD",
    "AuditRecord",
    "ClientFactory",
    "Delivery",
    "Foreign",
    "ForeignIds",
    "MerchantFactory",
    "SignatureError",
    "TestClock",
    "TestCustomer",
    "TestMerchant",
    "WebhookReceiver",
    "apply_tenants",
    "assert_imports_only_sdk",
    "assert_no_cross_tenant_leak",
    "assert_not_found",
    "assert_tenant_table",
    "audit_records",
    "csrf_token",
    "customer_id",
    "locate_merchant",
    "portal_app",
    "portal_client",
    "portal_database",
    "portal_mail",
    "portal_merchant",
    "portal_platform",
    "portal_plugins",
    "portal_server_dsn",
    "portal_settings",
    "portal_sign_in",
    "resolve_loopback_only",
    "scratch_database",
    "sign_in",
    "verify_signature",
    "webhook_receiver",
]
