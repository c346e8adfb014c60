"""Loyalty accounts and points."""

from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table

from portal.sdk import TenantMigrationManager


class Customer(Table, tablename="portal_customer", schema=None):
    id = Varchar(
        length=40,
        default="",
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name=None,
        secret=False,
    )


class Iso(Table, tablename="portal_iso", schema=None):
    id = Varchar(
        length=40,
        default="",
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name=None,
        secret=False,
    )


class Merchant(Table, tablename="portal_merchant", schema=None):
    id = Varchar(
        length=40,
        default="",
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name=None,
        secret=False,
    )


ID = "2026-12-05T05:37:32:132031"
VERSION = "1.38.0"
DESCRIPTION = "loyalty accounts and points"


async def forwards() -> TenantMigrationManager:
    manager = TenantMigrationManager(
        migration_id=ID,
        app_name="loyalty",
        description=DESCRIPTION,
        tenant_tables=["loyalty_account", "loyalty_points"],
    )
    manager.add_table(class_name="LoyaltyAccount", tablename="loyalty_account", schema=None, columns=None)
    manager.add_table(class_name="LoyaltyPoints", tablename="loyalty_points", schema=None, columns=None)
    manager.add_column(
        table_class_name="LoyaltyAccount",
        tablename="loyalty_account",
        column_name="id",
        db_column_name="id",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 40,
            "default": "",
            "null": False,
            "primary_key": True,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="LoyaltyAccount",
        tablename="loyalty_account",
        column_name="iso_id",
        db_column_name="iso_id",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Iso,
            "on_delete": OnDelete.cascade,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="LoyaltyAccount",
        tablename="loyalty_account",
        column_name="merchant_id",
        db_column_name="merchant_id",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Merchant,
            "on_delete": OnDelete.cascade,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="LoyaltyAccount",
        tablename="loyalty_account",
        column_name="customer_id",
        db_column_name="customer_id",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Customer,
            "on_delete": OnDelete.cascade,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="LoyaltyAccount",
        tablename="loyalty_account",
        column_name="points",
        db_column_name="points",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="LoyaltyAccount",
        tablename="loyalty_account",
        column_name="last_activity",
        db_column_name="last_activity",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": TimestamptzNow(),
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="LoyaltyPoints",
        tablename="loyalty_points",
        column_name="id",
        db_column_name="id",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 60,
            "default": "",
            "null": False,
            "primary_key": True,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="LoyaltyPoints",
        tablename="loyalty_points",
        column_name="iso_id",
        db_column_name="iso_id",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Iso,
            "on_delete": OnDelete.cascade,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="LoyaltyPoints",
        tablename="loyalty_points",
        column_name="customer_id",
        db_column_name="customer_id",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Customer,
            "on_delete": OnDelete.cascade,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="LoyaltyPoints",
        tablename="loyalty_points",
        column_name="points",
        db_column_name="points",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    return manager
