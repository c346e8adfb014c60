"""A piccolo migration that also makes the tables it creates tenant-owned (row-level security).

``portal plugin migration`` writes plugin migrations with :class:`TenantMigrationManager`: its
table and column steps are piccolo's own (so the next migration can be worked out from them), and
``tenant_tables`` get :func:`portal.db.security.tenant_table_sql` after those steps, in the same
transaction. Piccolo runs ``add_raw`` steps before the others, so a raw step could not do it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.engine import ENGINE
from portal.db.security import tenant_table_sql


@dataclass
class TenantMigrationManager(MigrationManager):
    """A :class:`MigrationManager` that enables row-level security on ``tenant_tables`` after its steps."""

    tenant_tables: list[str] = field(default_factory=list)

    async def run(self, backwards: bool = False) -> None:
        """Run piccolo's steps, then the row-level security of the tables created, in one transaction."""
        async with ENGINE.transaction():
            await super().run(backwards=backwards)
            if backwards or self.preview or not self.tenant_tables:
                return
            transaction = ENGINE.current_transaction.get()
            assert transaction is not None
            await transaction.connection.execute("".join(tenant_table_sql(table) for table in self.tenant_tables))
