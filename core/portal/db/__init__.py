"""Database access: the shared piccolo engine, tenant transactions, migrations."""

import os

os.environ.setdefault("PICCOLO_CONF", "portal.db.piccolo_conf")
