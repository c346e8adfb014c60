"""Bringing the database up and down: embedded server, migrations, the app-role pool."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from portal.config import Settings
from portal.db.embedded import EmbeddedPostgres
from portal.db.engine import ENGINE, open_pool, with_user
from portal.db.migrate import migrate, use_apps
from portal.db.security import APP_ROLE

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0


class DatabaseRuntime:
    """Owns the process's database connections for the lifetime of a command or server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedded: EmbeddedPostgres | None = None
        self._owner_dsn: str | None = settings.database_url

    async def owner_dsn(self) -> str:
        """The owner connection string, starting the embedded server when none is configured."""
        if self._owner_dsn is None:
            self._embedded = EmbeddedPostgres(Path(self.settings.data_dir))
            dsn = self._embedded.start()
            await self._embedded.ensure_database(dsn)
            self._owner_dsn = dsn
        return self._owner_dsn

    async def app_dsn(self) -> str:
        """The application role's connection string."""
        if self.settings.app_database_url:
            return self.settings.app_database_url
        return with_user(await self.owner_dsn(), APP_ROLE, self.settings.app_role_password)

    async def migrate(self, app_modules: list[str]) -> dict[str, list[str]]:
        """Apply every pending migration of core and the given plugin apps."""
        use_apps(app_modules)
        dsn = await self.owner_dsn()
        try:
            return await migrate(dsn, self.settings.app_role_password)
        finally:
            ENGINE.config = {}

    async def connect(self) -> None:
        """Open the application role's pool; every table query goes through it."""
        settings = self.settings
        dsn = await self.app_dsn()
        ENGINE.config = {
            "dsn": dsn,
            "timeout": settings.db_acquire_timeout,
            "command_timeout": settings.db_statement_timeout,
        }
        ENGINE.pool = await open_pool(
            dsn,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            acquire_timeout=settings.db_acquire_timeout,
            statement_timeout=settings.db_statement_timeout,
        )

    async def close(self) -> None:
        """Close the pool and stop an embedded server this process started."""
        pool = ENGINE.pool
        if pool is not None:
            ENGINE.pool = None
            try:
                await asyncio.wait_for(pool.close(), timeout=CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning("connections still busy after %ss; closing them", CLOSE_TIMEOUT)
                pool.terminate()
        ENGINE.config = {}
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None
