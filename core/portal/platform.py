"""The platform of one process: settings, plugins, themes, database and tenant resolution."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Iterable
from pathlib import Path

import asyncpg
from taskiq import AsyncBroker

from portal.access.purposes import register_purposes
from portal.config import Settings
from portal.db.engine import database_unavailable
from portal.db.lifecycle import DatabaseRuntime
from portal.db.migrate import applied_migrations, installed_migrations, missing, use_apps
from portal.events.connections import close_clients
from portal.events.destinations import Resolver, system_resolve
from portal.i18n.catalogs import CORE_LOCALE, Catalogs, plugin_locale, theme_locale
from portal.mail import MailCatcher
from portal.payments.choice import GatewayAdapters
from portal.plugins.manager import create_plugin_manager
from portal.plugins.registry import PluginRegistry
from portal.tasks import runtime
from portal.tasks.broker import create_broker
from portal.tenancy.resolver import TenantResolver
from portal.theming.engine import ThemeRegistry
from portal.theming.filters import TEMPLATE_FILTERS

log = logging.getLogger(__name__)


CORE_TASK_MODULES = ["portal.tasks.system", "portal.access.login_task", "portal.tasks.wake", "portal.billing.engine"]
"""Modules whose taskiq tasks every process registers."""
READY_TIMEOUT = 2.0
"""Seconds the readiness check waits for the database."""


class PendingMigrationsError(RuntimeError):
    """The database is behind the installed code; run ``portal migrate``."""


class Platform:
    """Everything a web or worker process shares; built once, started and stopped once."""

    def __init__(self, settings: Settings, extra_plugins: Iterable[tuple[str, object]] = ()) -> None:
        self.settings = settings
        self.plugin_manager = create_plugin_manager(settings.load_plugins, extra_plugins)
        self.registry = PluginRegistry(self.plugin_manager)
        register_purposes(self.registry.link_purposes)  # links are issued and checked against them
        plugin_templates: dict[str, Path] = {
            key: info.templates for key, info in self.registry.plugins.items() if info.templates is not None
        }
        self.themes = ThemeRegistry(
            self.registry.themes, plugin_templates, filters=TEMPLATE_FILTERS, auto_reload=settings.demo
        )
        self.catalogs = Catalogs(
            [CORE_LOCALE, *(folder for info in self.registry.plugins.values() if (folder := plugin_locale(info)))],
            {key: [theme_locale(spec) for spec in self.themes.chain(key)] for key in self.themes.themes},
        )
        """Every installed package's translations, merged per theme and language."""
        self.database = DatabaseRuntime(settings)
        self.tenants = TenantResolver(self.registry, settings.base_domain, settings.tenant_cache_ttl)
        self.gateways = GatewayAdapters(self.registry)
        """Each merchant's payment gateway adapter, built on first use."""
        self.resolve: Resolver = system_resolve
        """How webhook delivery looks up endpoint host names (DNS, an external service; tests replace it)."""
        self.started = False
        self.broker: AsyncBroker | None = None
        self.mail_catcher: MailCatcher | None = None
        """In demo mode, the in-process SMTP server that keeps sent mail for ``/-/mail``."""
        self.installed_migrations: dict[str, frozenset[str]] = {}
        """Migration ids of the installed code, per app (read at start; readiness compares them)."""

    async def migrate(self) -> dict[str, list[str]]:
        """Apply pending migrations of core and every loaded plugin."""
        return await self.database.migrate(self.registry.piccolo_apps)

    async def start(self, *, worker: bool = False) -> None:
        """Connect as the application role, listen for tenant changes and start the broker.

        ``worker`` starts the broker for receiving too (some brokers, RabbitMQ's among them,
        open their consuming side only when started in a worker process).
        """
        if self.started:
            return
        use_apps(self.registry.piccolo_apps)
        self.installed_migrations = installed_migrations()
        try:
            await self.database.connect()
        except (OSError, asyncpg.PostgresError) as exc:
            await self.database.close()
            raise PendingMigrationsError(
                f"cannot connect as the application role ({exc}); run `portal migrate` first, "
                "and check PORTAL_APP_DATABASE_URL or PORTAL_APP_ROLE_PASSWORD"
            ) from exc
        try:
            await self._check_migrations()
        except PendingMigrationsError:
            await self.database.close()
            raise
        await self.tenants.listen(await self.database.app_dsn())
        runtime.set_platform(self)  # tasks and emit() find the platform of this process
        self.broker = await self._start_broker(worker)
        self.started = True

    async def _start_broker(self, worker: bool) -> AsyncBroker:
        """The task broker, started for kicking tasks (workers also receive with it)."""
        for module in [*CORE_TASK_MODULES, *self.registry.task_modules]:
            importlib.import_module(module)
        broker = create_broker(self.settings, await self.database.app_dsn())
        broker.is_worker_process = worker
        await broker.startup()
        return broker

    async def stop(self) -> None:
        """Release connections (and stop an embedded PostgreSQL this process started)."""
        if self.broker is not None:
            await self.broker.shutdown()
            self.broker = None
        await close_clients()
        await self.gateways.aclose()
        await self.tenants.close()
        await self.database.close()
        self.started = False

    async def _check_migrations(self) -> None:
        try:
            pending = missing(self.installed_migrations, await applied_migrations())
        except Exception as exc:  # missing tables or privileges: the schema is not there yet
            raise PendingMigrationsError(f"the database is not migrated ({exc}); run `portal migrate`") from exc
        if pending:
            names = ", ".join(f"{app} ({len(ids)})" for app, ids in pending.items())
            raise PendingMigrationsError(f"pending migrations: {names}; run `portal migrate`")

    async def readiness(self) -> list[str]:
        """What keeps this process from serving requests (empty when it is ready).

        One query, bounded by :data:`READY_TIMEOUT`: the database answers, and every migration
        of the installed code is recorded as applied.
        """
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                applied = await applied_migrations()
        except TimeoutError:
            return [f"database: no answer within {READY_TIMEOUT:g} s"]
        except Exception as exc:
            if database_unavailable(exc):
                return [f"database: unreachable ({type(exc).__name__})"]
            log.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
            return [f"database: check failed ({type(exc).__name__})"]
        pending = missing(self.installed_migrations, applied)
        if pending:
            names = ", ".join(f"{app} ({len(ids)})" for app, ids in pending.items())
            return [f"migrations: pending {names}; run portal migrate"]
        return []
