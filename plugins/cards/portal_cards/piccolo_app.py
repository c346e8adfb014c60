"""The cards plugin's piccolo app; its migrations run after core's.

It owns no table: cards on file are core's ``portal_payment_method`` (``portal.payments``).
"""

from pathlib import Path

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="cards",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=[],
    migration_dependencies=["portal.db.piccolo_app"],
)
