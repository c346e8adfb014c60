# portal_loyalty/piccolo_app.py
from pathlib import Path

from piccolo.conf.apps import AppConfig

from portal_loyalty.tables import LoyaltyAccount, LoyaltyPoints

APP_CONFIG = AppConfig(
    app_name="loyalty",
    migrations_folder_path=Path(__file__).resolve().parent / "migrations",
    table_classes=[LoyaltyAccount, LoyaltyPoints],
    migration_dependencies=["portal.db.piccolo_app"],
)
