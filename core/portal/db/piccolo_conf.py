"""Piccolo's configuration module (``PICCOLO_CONF``): the shared engine and the app registry.

``APP_REGISTRY`` is replaced at start-up with core plus every installed plugin's app.
"""

from piccolo.conf.apps import AppRegistry

from portal.db.engine import ENGINE

DB = ENGINE
APP_REGISTRY = AppRegistry(apps=["portal.db.piccolo_app"])
