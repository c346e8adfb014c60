"""The cards plugin's piccolo app; its migrations run after core's."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from portal_cards.tables import PaymentMethod

APP_CONFIG = AppConfig(
    app_name="cards",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=[PaymentMethod],
    migration_dependencies=["portal.db.piccolo_app"],
)
