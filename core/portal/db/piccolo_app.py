"""The core piccolo app: core tables and the migrations packaged in ``portal/migrations/``."""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig

from portal.access.tables import ACCESS_TABLES
from portal.events.tables import EVENT_TABLES
from portal.payments.tables import PAYMENT_TABLES
from portal.tenancy.tables import TENANT_TABLES


def core_migrations_path() -> Path:
    """Where the core migration history lives: inside the installed ``portal`` package."""
    return Path(__file__).resolve().parent.parent / "migrations"


APP_CONFIG = AppConfig(
    app_name="portal",
    migrations_folder_path=core_migrations_path(),
    table_classes=[*TENANT_TABLES, *ACCESS_TABLES, *EVENT_TABLES, *PAYMENT_TABLES],
)
