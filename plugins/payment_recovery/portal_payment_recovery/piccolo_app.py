"""The payment recovery plugin's piccolo app: its cases and emailed links; its migrations run after core's."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="payment_recovery",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=[],
    migration_dependencies=["portal.db.piccolo_app"],
)
