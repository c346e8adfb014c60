"""The example plugin's piccolo app; its migrations run after core's."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from support.example_plugin.tables import ExampleNote

APP_CONFIG = AppConfig(
    app_name="example",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=[ExampleNote],
    migration_dependencies=["portal.db.piccolo_app"],
)
