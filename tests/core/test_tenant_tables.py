"""Every tenant table, read from the catalog: row-level security forced, the one policy, and no way across ISOs.

No table is listed here. The tests find every table with an ``iso_id`` column in the migrated test
database (core's, the installed plugins', the test plugins'), plus ``portal_iso`` keyed by ``id``,
so a table added later is checked without a new test:

- the catalog: row-level security enabled and forced, exactly the policy ``tenant_isolation``
  whose ``USING`` and ``WITH CHECK`` are the expression ``tenant_table_sql`` writes (so
  ``... OR true``, another column or another function fails), and nothing granted to ``PUBLIC``;
- behaviour: a row of ISO A and a row of ISO B are generated for every table from the catalog
  and inserted as the owner; the application role, in ISO A's transaction, sees A's row and no
  other ISO's, updates and deletes none of B's rows, cannot move A's row to B and cannot insert a
  row for B.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import find, settings
from hypothesis import strategies as st

from portal.db.engine import fetch, system_transaction, tenant_transaction
from portal.ids import new_id
from portal.platform import Platform

APP_ROLE = "portal_app"

TENANT_TABLES = """
SELECT c.oid::regclass::text AS name, c.relkind::text AS kind, c.relrowsecurity AS rls,
       c.relforcerowsecurity AS forced, a.attname::text AS key,
       format_type(a.atttypid, a.atttypmod) AS key_type, n.nspname AS schema, c.relname AS table,
       has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
           AS public_privileges,
       has_table_privilege('portal_app', c.oid, 'SELECT') AS app_select,
       COALESCE(c.reloptions, '{}') @> '{security_invoker=true}' AS security_invoker
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   AND a.attname = CASE WHEN c.oid = 'public.portal_iso'::regclass THEN 'id' ELSE 'iso_id' END
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
 ORDER BY 1
"""

POLICIES = """
SELECT policyname, permissive, roles::text[] AS roles, cmd, qual, with_check
  FROM pg_policies WHERE schemaname = $1 AND tablename = $2 ORDER BY policyname
"""

RESOLVER_READ_TABLES = {
    "portal_iso",
    "portal_merchant",
    "portal_merchant_domain",
    "portal_api_key",
    "portal_webhook_delivery",
    "portal_event_handling",
    "portal_task",
}
"""The tables ``portal_resolver`` reads whole (docs/architecture.md, "Narrow paths before an ISO is known")."""

SHARED_TABLES = {"migration", "portal_schedule"}
"""Tables without ``iso_id`` the application role may read: piccolo's record of applied migrations, and the
scheduled jobs' names and run times (no tenant data)."""

NOT_GENERATED: dict[str, str] = {}
"""Tables whose rows the generator below cannot make, each with the reason; only the catalog test covers them.

Empty today: every tenant table gets generated rows. Prefer teaching the generator (``RowFactory``).
"""

CURRENT_ISO_BODY = "SELECT NULLIF(current_setting('portal.iso_id', true), '')"


def expected_condition(key: str, key_type: str) -> str:
    """The policy expression ``tenant_table_sql`` writes, as PostgreSQL prints it back."""
    if key_type == "text":
        return f"({key} = portal_current_iso())"
    if key_type.startswith("character varying"):
        return f"(({key})::text = portal_current_iso())"
    raise AssertionError(
        f"{key} is {key_type}: say here how PostgreSQL prints its comparison with portal_current_iso()"
    )


def normalised(expression: str | None) -> str | None:
    return None if expression is None else " ".join(expression.split())


async def owner(platform: Platform) -> asyncpg.Connection:
    return await asyncpg.connect(platform.settings.database_url)


async def tenant_tables(connection: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = [dict(row) for row in await connection.fetch(TENANT_TABLES)]
    names = {row["name"] for row in rows}
    assert {"portal_iso", "portal_merchant", "portal_customer", "portal_audit_event", "portal_payment_method"} <= names
    assert "example_note" in names, "the test plugins' tables are found"
    return rows


async def test_every_tenant_table_forces_rls_with_exactly_the_tenant_policy(shared_tenants: Platform) -> None:
    connection = await owner(shared_tenants)
    try:
        tables = await tenant_tables(connection)
        policies = {
            row["name"]: [dict(p) for p in await connection.fetch(POLICIES, row["schema"], row["table"])]
            for row in tables
        }
        shared = await connection.fetch(
            """
            SELECT c.relname FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND c.oid <> 'public.portal_iso'::regclass
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'iso_id')
               AND has_table_privilege('portal_app', c.oid, 'SELECT')
            """
        )
    finally:
        await connection.close()
    problems: list[str] = []
    for table in tables:
        name = table["name"]
        if table["public_privileges"]:
            problems.append(f"{name}: PUBLIC has privileges on it")
        if table["kind"] == "v":
            if table["app_select"] and not table["security_invoker"]:
                problems.append(f"{name}: a view the app reads with its owner's rights (set security_invoker)")
            continue
        if table["kind"] in ("m", "f"):
            if table["app_select"]:
                problems.append(f"{name}: the app reads it and it cannot have row-level security")
            continue
        if not (table["rls"] and table["forced"]):
            problems.append(f"{name}: row-level security enabled {table['rls']}, forced {table['forced']}")
        condition = expected_condition(table["key"], table["key_type"])
        expected = [
            {
                "policyname": "resolver_read", "permissive": "PERMISSIVE", "roles": ["portal_resolver"],
                "cmd": "SELECT", "qual": "true", "with_check": None,
            },
            {
                "policyname": "tenant_isolation", "permissive": "PERMISSIVE", "roles": ["public"],
                "cmd": "ALL", "qual": condition, "with_check": condition,
            },
        ]  # fmt: skip
        if table["table"] not in RESOLVER_READ_TABLES:
            expected = expected[1:]
        found = [
            {**policy, "qual": normalised(policy["qual"]), "with_check": normalised(policy["with_check"])}
            for policy in policies[name]
        ]
        if found != expected:
            problems.append(f"{name}: policies {found}, expected {expected}")
    extra_shared = {row["relname"] for row in shared} - SHARED_TABLES
    if extra_shared:
        problems.append(f"the app reads tables without iso_id, shared by every ISO: {sorted(extra_shared)}")
    assert not problems, "\n".join(problems)


async def test_portal_current_iso_is_the_transactions_iso_setting(shared_tenants: Platform) -> None:
    connection = await owner(shared_tenants)
    try:
        functions = await connection.fetch(
            """
            SELECT p.oid::regprocedure::text AS signature, p.pronamespace::regnamespace::text AS schema,
                   l.lanname, p.prosecdef, p.proconfig, p.prosrc, p.proowner::regrole::text AS owner
              FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = 'portal_current_iso'
            """
        )
    finally:
        await connection.close()
    assert len(functions) == 1, functions
    function = dict(functions[0])
    assert function["signature"] == "portal_current_iso()" and function["schema"] == "public"
    assert (function["lanname"], function["prosecdef"], function["proconfig"]) == ("sql", False, None)
    assert " ".join(function["prosrc"].split()) == CURRENT_ISO_BODY
    assert function["owner"] != APP_ROLE
    assert await fetch("SELECT portal_current_iso() AS iso") == [{"iso": None}]
    async with system_transaction():
        assert await fetch("SELECT portal_current_iso() AS iso") == [{"iso": None}]
    iso = new_id("iso")
    async with tenant_transaction(iso):
        assert await fetch("SELECT portal_current_iso() AS iso, current_setting('portal.iso_id') AS setting") == [
            {"iso": iso, "setting": iso}
        ]


# -- rows generated from the catalog ---------------------------------------------------------------


class NotGenerated(AssertionError):
    """The catalog asks for something the generator cannot produce; extend it (the message says where)."""


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Column:
    name: str
    type: str
    base: str
    category: str
    not_null: bool
    skip: bool
    max_length: int | None
    labels: list[str]


@dataclass
class ForeignKey:
    columns: list[str]
    parent: str
    parent_columns: list[str]


@dataclass
class Check:
    columns: list[str]
    definition: str


@dataclass
class Table:
    name: str
    key: str | None
    columns: dict[str, Column]
    foreign_keys: list[ForeignKey]
    checks: dict[str, Check]
    primary_key: list[str]


COLUMNS = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, b.typname AS base,
       b.typcategory::text AS category, a.attnotnull AS not_null,
       (a.attgenerated <> '' OR a.attidentity = 'a') AS skip,
       CASE WHEN b.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4 THEN a.atttypmod - 4 END AS max_length,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = b.oid ORDER BY e.enumsortorder) AS labels
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
 WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

CONSTRAINTS = """
SELECT con.conname, con.contype::text AS kind, con.confrelid::regclass::text AS parent,
       pg_get_constraintdef(con.oid) AS definition,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(n, i)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(n, i)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i) AS parent_columns
  FROM pg_constraint con WHERE con.conrelid = $1::regclass AND con.contype IN ('c', 'f', 'p')
 ORDER BY con.conname
"""

STRING_LITERAL = re.compile(r"'((?:[^']|'')*)'")
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def regex_match(pattern: str) -> str | None:
    """The simplest text matching a CHECK's regular expression (Hypothesis finds it)."""
    try:
        return find(st.from_regex(pattern, fullmatch=True), lambda _: True, settings=settings(database=None))
    except Exception:
        return None


def check_literals(definition: str) -> tuple[list[str], list[str]]:
    """Candidate text and numbers for the columns of a CHECK, taken from its definition."""
    texts: list[str] = []
    for match in STRING_LITERAL.finditer(definition):
        literal = match.group(1).replace("''", "'")
        if definition[: match.start()].rstrip().endswith(("~", "~*")):
            found = regex_match(literal)
            if found is not None:
                texts.append(found)
        else:
            texts.append(literal)
    numbers: list[str] = []
    for number in NUMBER.findall(STRING_LITERAL.sub("''", definition)):
        if "." in number:
            numbers.append(number)
        else:
            numbers += [str(int(number) + delta) for delta in (0, 1, -1)]
    return texts, numbers


@dataclass
class RowFactory:
    """Inserts, as the owner, one valid row per table and ISO, parents first, and deletes them again.

    NOT NULL columns get a value of their type; foreign keys point at the same ISO's row of the
    parent table (generated in turn); the ISO key column holds the ISO's id; a CHECK that refuses
    the row is satisfied from the constants in its own definition. Values travel as text and are
    cast to the column's type by PostgreSQL.
    """

    connection: asyncpg.Connection
    tables: dict[str, Table] = field(default_factory=dict)
    rows: dict[tuple[str, str], dict[str, str | None]] = field(default_factory=dict)
    created: list[tuple[Table, dict[str, str | None]]] = field(default_factory=list)
    solved: dict[str, dict[str, str | None]] = field(default_factory=dict)
    counter: int = 0
    building: set[str] = field(default_factory=set)

    async def table(self, name: str, key: str | None = None) -> Table:
        if name not in self.tables:
            columns = {row["name"]: Column(**dict(row)) for row in await self.connection.fetch(COLUMNS, name)}
            constraints = await self.connection.fetch(CONSTRAINTS, name)
            if key is None:
                key = "id" if name == "portal_iso" else ("iso_id" if "iso_id" in columns else None)
            self.tables[name] = Table(
                name=name,
                key=key,
                columns=columns,
                foreign_keys=[
                    ForeignKey(columns=c["columns"], parent=c["parent"], parent_columns=c["parent_columns"])
                    for c in constraints
                    if c["kind"] == "f"
                ],
                checks={c["conname"]: Check(c["columns"], c["definition"]) for c in constraints if c["kind"] == "c"},
                primary_key=next((c["columns"] for c in constraints if c["kind"] == "p"), []),
            )
        return self.tables[name]

    def value(self, table: Table, column: Column) -> str:
        self.counter += 1
        if column.labels:
            return column.labels[0]
        if column.base in ("json", "jsonb"):
            return "{}"
        if column.base == "bytea":
            return "\\x" + uuid.uuid4().hex
        if column.base == "uuid":
            return str(uuid.uuid4())
        if column.category == "S":
            text = f"t{self.counter}{uuid.uuid4().hex}"
            return text[: column.max_length] if column.max_length else text
        if column.category == "N":
            return str(self.counter)
        if column.category == "B":
            return "false"
        if column.base in ("timestamptz", "timestamp"):
            return (datetime.now(UTC) + timedelta(days=1)).isoformat()
        if column.base == "date":
            return "2100-01-01"
        if column.base in ("time", "timetz"):
            return "12:00"
        if column.category == "T":
            return "1 hour"
        if column.base in ("inet", "cidr"):
            return "192.0.2.0/24" if column.base == "cidr" else "192.0.2.1"
        if column.category == "A":
            return "{}"
        raise NotGenerated(f"{table.name}.{column.name}: no generic value for type {column.type}; add one in value()")

    async def values(self, table: Table, iso: str) -> tuple[dict[str, str | None], set[str]]:
        """A fresh row of ``table`` for ``iso``, pointing at that ISO's parent rows; and the columns that must stay."""
        values: dict[str, str | None] = {
            column.name: self.value(table, column)
            for column in table.columns.values()
            if column.not_null and not column.skip
        }
        fixed: set[str] = set()
        if table.key is not None:
            values[table.key] = iso
            fixed.add(table.key)
        for key in table.foreign_keys:
            if key.parent == table.name:
                if any(table.columns[name].not_null for name in key.columns):
                    raise NotGenerated(f"{table.name}: a NOT NULL reference to itself")
                continue
            parent = await self.row(key.parent, iso)
            for name, parent_name in zip(key.columns, key.parent_columns, strict=True):
                if name in fixed and values[name] != parent[parent_name]:
                    raise NotGenerated(f"{table.name}.{name}: its foreign keys and ISO key disagree")
                values[name] = parent[parent_name]
                fixed.add(name)
        values.update(self.solved.get(table.name, {}))
        return values, fixed

    def insert_sql(self, table: Table, names: list[str], returning: bool) -> str:
        casts = ", ".join(f"${n}::text::{table.columns[name].type}" for n, name in enumerate(names, 1))
        sql = f"INSERT INTO {table.name} ({', '.join(map(ident, names))}) VALUES ({casts})"
        if returning:
            sql += " RETURNING " + ", ".join(f"{ident(name)}::text AS {ident(name)}" for name in table.columns)
        return sql

    def choices(
        self, table: Table, name: str, values: dict[str, str | None], fixed: set[str]
    ) -> Iterator[dict[str, str | None]]:
        check = table.checks[name]
        texts, numbers = check_literals(check.definition)
        options: list[list[str | None]] = []
        for column_name in check.columns:
            column = table.columns[column_name]
            current = values.get(column_name)
            if column_name in fixed:
                candidates: list[str | None] = [current]
            elif column.category == "N":
                candidates = [*numbers, current]
            elif column.category == "B":
                candidates = ["false", "true"]
            elif column.category == "S" or column.labels:
                candidates = [*texts, current]
            else:  # a time or another type the check's text constants cannot be: a value of its type, or none
                candidates = [current if current is not None else self.value(table, column)]
            if not column.not_null:
                candidates.append(None)
            options.append(list(dict.fromkeys(candidates)))
        for combination in itertools.product(*options):
            yield dict(zip(check.columns, combination, strict=True))

    async def insert(
        self, table: Table, iso: str, values: dict[str, str | None], fixed: set[str]
    ) -> dict[str, str | None]:
        attempts: dict[str, Iterator[dict[str, str | None]]] = {}
        for _ in range(500):
            names = list(values)
            try:
                await self.connection.execute("SELECT set_config('portal.iso_id', $1, false)", iso)
                row = await self.connection.fetchrow(self.insert_sql(table, names, True), *values.values())
                return dict(row)
            except asyncpg.CheckViolationError as error:
                name = error.constraint_name
                if name not in table.checks:
                    raise NotGenerated(f"{table.name}: {error}") from error
                if name not in attempts:
                    attempts[name] = self.choices(table, name, values, fixed)
                try:
                    choice = next(attempts[name])
                except StopIteration:
                    raise NotGenerated(
                        f"{table.name}: no value found for CHECK {name} {table.checks[name].definition};"
                        " teach check_literals() its constants"
                    ) from error
                values.update(choice)
                self.solved.setdefault(table.name, {}).update({k: v for k, v in choice.items() if k not in fixed})
            except asyncpg.NotNullViolationError as error:
                column = table.columns[error.column_name]
                if values.get(column.name) is not None:
                    raise
                values[column.name] = self.value(table, column)
        raise NotGenerated(f"{table.name}: no valid row after 500 attempts")

    async def row(self, name: str, iso: str) -> dict[str, str | None]:
        """The owner-inserted row of ``name`` for ``iso`` (made once, with its parents)."""
        if (name, iso) in self.rows:
            return self.rows[(name, iso)]
        if name in self.building:
            raise NotGenerated(f"{name}: its foreign keys form a cycle")
        self.building.add(name)
        try:
            table = await self.table(name)
            values, fixed = await self.values(table, iso)
            row = await self.insert(table, iso, values, fixed)
        finally:
            self.building.discard(name)
        self.rows[(name, iso)] = row
        self.created.append((table, row))
        return row

    async def delete_all(self) -> None:
        for table, row in reversed(self.created):
            names = table.primary_key or ([table.key] if table.key else [c for c in row if row[c] is not None])
            where = " AND ".join(f"{ident(name)}::text = ${n}" for n, name in enumerate(names, 1))
            await self.connection.execute(f"DELETE FROM {table.name} WHERE {where}", *(row[name] for name in names))


class _RolledBack(Exception):
    pass


async def as_app(iso: str, statement: str, *args: object) -> str | asyncpg.PostgresError:
    """Run ``statement`` as the application role in ``iso``'s transaction and roll it back.

    Returns the command's status (``UPDATE 0``) or the error PostgreSQL raised.
    """
    try:
        async with tenant_transaction(iso) as transaction:
            status = await transaction.connection.execute(statement, *args)
            raise _RolledBack(status)
    except _RolledBack as done:
        return str(done.args[0])
    except asyncpg.PostgresError as error:
        return error


def refused_by_rls(outcome: str | asyncpg.PostgresError) -> bool:
    return isinstance(outcome, asyncpg.InsufficientPrivilegeError) and "row-level security" in str(outcome)


def refused(outcome: str | asyncpg.PostgresError) -> bool:
    return isinstance(outcome, asyncpg.InsufficientPrivilegeError)


async def check_table(factory: RowFactory, table: Table, rights: dict[str, bool], iso_a: str, iso_b: str) -> list[str]:
    """What the application role in ISO A can do to ISO B's row of ``table``; the problems found."""
    problems: list[str] = []
    key, name = ident(table.key or ""), table.name

    without_iso = await fetch(f"SELECT count(*) AS n FROM {name}")
    async with system_transaction():
        without_iso += await fetch(f"SELECT count(*) AS n FROM {name}")
    if without_iso != [{"n": 0}, {"n": 0}]:
        problems.append(f"{name}: rows visible with no ISO set: {without_iso}")

    async with tenant_transaction(iso_a):
        seen = await fetch(f"SELECT {key}::text AS iso, count(*) AS n FROM {name} GROUP BY 1 ORDER BY 1")
    if [row["iso"] for row in seen] != [iso_a]:
        problems.append(f"{name}: ISO A sees rows of {[row['iso'] for row in seen]}, expected only its own ({iso_a})")

    outcome = await as_app(iso_a, f"UPDATE {name} SET {key} = {key} WHERE {key}::text = $1", iso_b)
    if not (outcome == "UPDATE 0" if rights["update"] else refused(outcome)):
        problems.append(f"{name}: ISO A updating ISO B's rows: {outcome!r}")
    outcome = await as_app(iso_a, f"UPDATE {name} SET {key} = $2 WHERE {key}::text = $1", iso_a, iso_b)
    if not (refused_by_rls(outcome) if rights["update"] else refused(outcome)):
        problems.append(f"{name}: ISO A moving its row to ISO B: {outcome!r}")

    outcome = await as_app(iso_a, f"DELETE FROM {name} WHERE {key}::text = $1", iso_b)
    if not (outcome == "DELETE 0" if rights["delete"] else refused(outcome)):
        problems.append(f"{name}: ISO A deleting ISO B's rows: {outcome!r}")

    values, _ = await factory.values(table, iso_b)
    outcome = await as_app(iso_a, factory.insert_sql(table, list(values), False), *values.values())
    if not (refused_by_rls(outcome) if rights["insert"] else refused(outcome)):
        problems.append(f"{name}: ISO A inserting a row of ISO B: {outcome!r}")
    if rights["insert"] and not rights["key_unique"]:  # the same row for A goes in: the policy refused B's
        values, _ = await factory.values(table, iso_a)
        outcome = await as_app(iso_a, factory.insert_sql(table, list(values), False), *values.values())
        # A table keyed by its parent (one row per customer) has A's row already: the duplicate key
        # is found after the policy admitted the row, which is what the control shows.
        if outcome != "INSERT 0 1" and not isinstance(outcome, asyncpg.UniqueViolationError):
            problems.append(f"{name}: ISO A inserting a row of its own (the control): {outcome!r}")
    return problems


async def test_no_iso_reaches_another_isos_rows_in_any_tenant_table(shared_tenants: Platform) -> None:
    connection = await owner(shared_tenants)
    factory = RowFactory(connection)
    iso_a, iso_b = new_id("iso"), new_id("iso")
    try:
        tables = [
            row
            for row in await tenant_tables(connection)
            if row["kind"] in ("r", "p") and row["name"] not in NOT_GENERATED
        ]
        for row in tables:
            await factory.table(row["name"], row["key"])
        for iso in (iso_a, iso_b):
            await factory.row("portal_iso", iso)
            for row in tables:
                await factory.row(row["name"], iso)
        problems: list[str] = []
        for row in tables:
            table = factory.tables[row["name"]]
            assert table.key is not None
            rights = dict(
                await connection.fetchrow(
                    """
                    SELECT has_table_privilege($1, $2::regclass, 'INSERT') AS insert,
                           has_column_privilege($1, $2::regclass, $3, 'UPDATE') AS update,
                           has_table_privilege($1, $2::regclass, 'DELETE') AS delete,
                           EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
                                     ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                                    WHERE i.indrelid = $2::regclass AND i.indisunique AND i.indnkeyatts = 1
                                      AND i.indpred IS NULL AND a.attname = $3) AS key_unique
                    """,
                    APP_ROLE,
                    table.name,
                    table.key,
                )
            )
            problems += await check_table(factory, table, rights, iso_a, iso_b)
        assert not problems, "\n".join(problems)
    finally:
        try:
            await factory.delete_all()
            left = [
                table.name
                for table in factory.tables.values()
                if table.key
                and await connection.fetchval(
                    f"SELECT count(*) FROM {table.name} WHERE {ident(table.key)}::text IN ($1, $2)", iso_a, iso_b
                )
            ]
        finally:
            await connection.close()
    assert left == [], f"rows of the test's ISOs left behind in {left}"
