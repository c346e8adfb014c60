from pathlib import Path

from piccolo.conf.apps import AppConfig

from portal_notes.tables import Note

APP_CONFIG = AppConfig(
    app_name="notes",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=[Note],
    migration_dependencies=["portal.db.piccolo_app"],
)
