"""The merchant switch's piccolo app: switch records and ISO policies; its migrations run after core's."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="merchant_switch",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=[],
    migration_dependencies=["portal.db.piccolo_app"],
)
