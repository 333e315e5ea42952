"""Where the live database differs from what the migrations declare.

``compare(connection)`` returns the differences between the live catalog of the app
schemas and the declared state: unapplied migrations, tables, columns (type, null,
default), indexes (their whole ``pg_get_indexdef``), constraints
(``pg_get_constraintdef``), views and triggers, and objects nobody declared
("hand-made"). Which objects are declared, and by which migration, comes from
``portal/db/declared.py`` (the one implementation, shared with the diagnostics Indexes
page). To get PostgreSQL's own spelling of the declared types, defaults and definitions
(instead of guessing how the server will print them), it creates the declared tables,
empty, in scratch schemas inside a transaction that is always rolled back, and reads
both with the same catalog query. That needs CREATE on the database (the migrator has
it); it takes no lock on any existing table.

The app schemas are those named by a model's ``db_table`` (``'core"."projects'``);
``public`` (Django's own tables) is not compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from .declared import declaration
from .names import join_table, split_table

PROBE_PREFIX = "zz_drift_probe_"


@dataclass(frozen=True)
class Difference:
    """One way the live database differs from what the migrations declare."""

    kind: str
    schema: str = ""
    table: str = ""
    name: str = ""
    expected: str | None = None
    actual: str | None = None
    detail: str = ""

    def line(self) -> str:
        where = ".".join(p for p in (self.schema, self.table) if p)
        subject = " ".join(p for p in (where, self.name) if p)
        text = f"{self.kind}: {subject}" if subject else self.kind
        if self.expected is not None or self.actual is not None:
            text += f" (migrations: {self.expected!s}; database: {self.actual!s})"
        if self.detail:
            text += f" - {self.detail}"
        return text

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


# --- the live catalog -----------------------------------------------------------------

CATALOG_RELATIONS = """
SELECT n.nspname, c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
CATALOG_COLUMNS = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
"""
CATALOG_INDEXES = """
SELECT n.nspname, t.relname, i.relname, pg_get_indexdef(i.oid), x.indisvalid, x.indisprimary
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = ANY(%(schemas)s)
"""
# 'n' (NOT NULL as a constraint, PostgreSQL 18) is compared as the column's nullability.
CATALOG_CONSTRAINTS = """
SELECT n.nspname, t.relname, con.conname, pg_get_constraintdef(con.oid), con.convalidated,
       con.contype = 'p'
  FROM pg_constraint con
  JOIN pg_class t ON t.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND con.contype IN ('c', 'f', 'p', 'u', 'x')
"""
CATALOG_TRIGGERS = """
SELECT n.nspname, t.relname, tg.tgname
  FROM pg_trigger tg
  JOIN pg_class t ON t.oid = tg.tgrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND NOT tg.tgisinternal
"""


@dataclass
class Catalog:
    relations: dict[tuple[str, str], str] = field(default_factory=dict)
    columns: dict[tuple[str, str, str], tuple[str, bool, str | None]] = field(default_factory=dict)
    indexes: dict[tuple[str, str], tuple[str, str, bool]] = field(default_factory=dict)
    constraints: dict[tuple[str, str], tuple[str, str, bool]] = field(default_factory=dict)
    triggers: dict[tuple[str, str], str] = field(default_factory=dict)


def primary_key(table: str) -> str:
    """How a primary key is keyed: by its table. Its name is not compared, because
    Django keeps the old one when it renames a table (``item_pkey`` on ``thing``) while
    a fresh database gets ``thing_pkey``; both are what the migrations produce."""
    return f"(primary key of {table})"


def read_catalog(cursor, schemas: Iterable[str], rename: dict[str, str] | None = None) -> Catalog:
    """The app schemas as PostgreSQL prints them. With ``rename`` (probe schema -> real
    schema) the probe's objects are reported under the real schema's name. Call with
    ``search_path`` set to ``pg_catalog`` so every definition is schema-qualified."""
    rename = rename or {}
    names = list(schemas)

    def real(schema: str) -> str:
        return rename.get(schema, schema)

    def text(definition: str) -> str:
        for probe, target in rename.items():
            definition = definition.replace(f"{probe}.", f"{target}.")
        return definition

    catalog = Catalog()
    cursor.execute(CATALOG_RELATIONS, {"schemas": names})
    for schema, rel, kind in cursor.fetchall():
        catalog.relations[(real(schema), rel)] = "view" if kind in ("v", "m") else "table"
    cursor.execute(CATALOG_COLUMNS, {"schemas": names})
    for schema, rel, col, type_, notnull, default in cursor.fetchall():
        catalog.columns[(real(schema), rel, col)] = (
            type_,
            not notnull,
            text(default) if default else None,
        )
    cursor.execute(CATALOG_INDEXES, {"schemas": names})
    for schema, rel, name, definition, valid, primary in cursor.fetchall():
        if primary:
            definition, name = (
                definition.replace(f" {name} ON ", f" {primary_key(rel)} ON "),
                primary_key(rel),
            )
        catalog.indexes[(real(schema), name)] = (rel, text(definition), valid)
    cursor.execute(CATALOG_CONSTRAINTS, {"schemas": names})
    for schema, rel, name, definition, validated, primary in cursor.fetchall():
        if primary:
            name = primary_key(rel)
        if not validated:
            # pg_get_constraintdef appends it; a constraint not yet validated is
            # reported as such, not as a different definition.
            definition = definition.removesuffix(" NOT VALID")
        catalog.constraints[(real(schema), name)] = (rel, text(definition), validated)
    cursor.execute(CATALOG_TRIGGERS, {"schemas": names})
    for schema, rel, name in cursor.fetchall():
        catalog.triggers[(real(schema), name)] = rel
    return catalog


_SAFE_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]*$")


BARE_SCHEMA = """
SELECT COALESCE(
    (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass(%(table)s)),
    current_schema())
"""


def _probe_name(schema: str) -> str:
    """The scratch schema for ``schema`` ("" for the tables models name bare)."""
    if not schema:
        return PROBE_PREFIX + "_bare"
    if not _SAFE_SCHEMA.match(schema):
        raise ValueError(f"schema name not supported by the drift probe: {schema!r}")
    return PROBE_PREFIX + schema


def declared_catalog(
    connection: BaseDatabaseWrapper, state: ProjectState, only: set[str] | None = None
) -> Catalog:
    """The catalog the declared state produces, read back from PostgreSQL: every managed
    model of ``state`` created empty in ``zz_drift_probe_<schema>`` schemas, inside a
    transaction that is rolled back whatever happens. Every model is created (foreign
    keys need their targets) but only the schemas in ``only`` are read back."""
    models = [
        m
        for m in state.apps.get_models(include_auto_created=True)
        if m._meta.managed and not m._meta.proxy and not m._meta.swapped
    ]
    bare = next((m._meta.db_table for m in models if not split_table(m._meta.db_table)[0]), None)
    schemas = {split_table(m._meta.db_table)[0] or "" for m in models}
    probes = {_probe_name(s): s for s in schemas}
    for model in models:
        schema, table = split_table(model._meta.db_table)
        model._meta.db_table = join_table(_probe_name(schema or ""), table)
    qn = connection.ops.quote_name
    with transaction.atomic(using=connection.alias):
        try:
            with connection.cursor() as cursor:
                # Models that name a table bare get it wherever search_path resolves the
                # name (public, or the first schema of a path without it): read back
                # under that schema's name.
                cursor.execute(BARE_SCHEMA, {"table": qn(bare) if bare else None})
                probes[_probe_name("")] = cursor.fetchone()[0]
                for probe in probes:
                    cursor.execute(f"CREATE SCHEMA {qn(probe)}")
            with connection.schema_editor(atomic=False) as editor:
                for model in models:
                    if not model._meta.auto_created:
                        editor.create_model(model)
                deferred = list(editor.deferred_sql)
                editor.deferred_sql.clear()
                for sql in deferred:
                    editor.execute(sql)
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL search_path = pg_catalog")
                wanted = [p for p, s in probes.items() if only is None or s in only]
                return read_catalog(cursor, wanted, rename=probes)
        finally:
            transaction.set_rollback(True, using=connection.alias)


def live_catalog(connection: BaseDatabaseWrapper, schemas: Iterable[str]) -> Catalog:
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        try:
            cursor.execute("SET LOCAL search_path = pg_catalog")
            return read_catalog(cursor, schemas)
        finally:
            # Inside an outer transaction (a request, a test) a released savepoint would
            # keep the search_path until that transaction ends: roll it back instead.
            transaction.set_rollback(True, using=connection.alias)


# --- comparison -----------------------------------------------------------------------


def unapplied(connection: BaseDatabaseWrapper) -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [(m.app_label, m.name) for m, backwards in plan if not backwards]


def unapplied_differences(connection: BaseDatabaseWrapper) -> list[Difference]:
    return [
        Difference("unapplied migration", name=f"{app}.{name}")
        for app, name in unapplied(connection)
    ]


def declared_state_catalog(connection: BaseDatabaseWrapper) -> Catalog:
    """The catalog the migrations' final state produces (the slow half of ``compare``:
    it builds every table in scratch schemas). It depends only on the migration files
    and the server's spelling, so a long-lived process may keep it."""
    # The final state comes from the files alone (no django_migrations query: a role
    # that may not read it can still build the declared side).
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return declared_catalog(connection, loader.project_state(), only=declaration().schemas)


def compare(connection: BaseDatabaseWrapper) -> list[Difference]:
    """Every difference between the live app schemas and the migrations, sorted."""
    diffs = unapplied_differences(connection)
    want = declared_state_catalog(connection)
    have = live_catalog(connection, declaration().schemas)
    return diffs + differences(want, have)


def differences(want: Catalog, have: Catalog) -> list[Difference]:
    """The differences between the declared catalog ``want`` and the live ``have``
    (unapplied migrations aside), sorted."""
    diffs: list[Difference] = []
    declared = declaration()
    schemas = declared.schemas
    by_app = declared.objects

    def origin(kind: str, schema: str, name: str) -> str:
        obj = by_app.get((kind, schema, name))
        return f"declared by {obj.app_label}.{obj.migration}" if obj else ""

    # Tables and views.
    declared_views = {(o.schema, o.name) for o in declared.of_kind("view", schemas)}
    for key in sorted(want.relations):
        if key not in have.relations:
            diffs.append(Difference("missing table", *key, detail=origin("table", *key)))
    for key in sorted(declared_views - have.relations.keys()):
        diffs.append(Difference("missing view", *key, detail=origin("view", *key)))
    for key, kind in sorted(have.relations.items()):
        if key not in want.relations and key not in declared_views:
            diffs.append(Difference(f"hand-made {kind}", *key))
    # Columns, only on tables both sides have.
    for (schema, table, column), (type_, null, default) in sorted(want.columns.items()):
        if (schema, table) not in have.relations:
            continue
        live = have.columns.get((schema, table, column))
        if live is None:
            diffs.append(Difference("missing column", schema, table, column))
            continue
        if live[0] != type_:
            diffs.append(Difference("column type", schema, table, column, type_, live[0]))
        if live[1] != null:
            diffs.append(
                Difference(
                    "column null",
                    schema,
                    table,
                    column,
                    "NULL" if null else "NOT NULL",
                    "NULL" if live[1] else "NOT NULL",
                )
            )
        if live[2] != default:
            diffs.append(Difference("column default", schema, table, column, default, live[2]))
    for (schema, table, column), live in sorted(have.columns.items()):
        if (schema, table) in want.relations and (schema, table, column) not in want.columns:
            diffs.append(
                Difference("hand-made column", schema, table, column, detail=f"type {live[0]}")
            )
    # Indexes: the whole definition.
    declared_sql_indexes = {(o.schema, o.name) for o in declared.of_kind("index", schemas)}
    for (schema, name), (table, definition, _valid) in sorted(want.indexes.items()):
        live_index = have.indexes.get((schema, name))
        if live_index is None:
            diffs.append(Difference("missing index", schema, table, name, detail=definition))
        elif live_index[1] != definition:
            diffs.append(
                Difference("index definition", schema, table, name, definition, live_index[1])
            )
        elif not live_index[2]:
            diffs.append(
                Difference(
                    "invalid index",
                    schema,
                    table,
                    name,
                    detail="a failed CREATE INDEX CONCURRENTLY left it; drop it and migrate again",
                )
            )
    for (schema, name), (table, definition, _valid) in sorted(have.indexes.items()):
        if (schema, name) not in want.indexes and (schema, name) not in declared_sql_indexes:
            diffs.append(Difference("hand-made index", schema, table, name, detail=definition))
    # Constraints.
    declared_sql_constraints = {(o.schema, o.name) for o in declared.of_kind("constraint", schemas)}
    for (schema, name), (table, definition, _v) in sorted(want.constraints.items()):
        live_con = have.constraints.get((schema, name))
        if live_con is None:
            diffs.append(Difference("missing constraint", schema, table, name, detail=definition))
        elif live_con[1] != definition:
            diffs.append(
                Difference("constraint definition", schema, table, name, definition, live_con[1])
            )
        elif not live_con[2]:
            diffs.append(
                Difference(
                    "constraint not validated",
                    schema,
                    table,
                    name,
                    detail="added NOT VALID, never validated: ALTER TABLE ... VALIDATE CONSTRAINT",
                )
            )
    for (schema, name), (table, definition, _v) in sorted(have.constraints.items()):
        if (schema, name) not in want.constraints and (
            schema,
            name,
        ) not in declared_sql_constraints:
            diffs.append(Difference("hand-made constraint", schema, table, name, detail=definition))
    # Triggers (only RunSQL declares them).
    declared_triggers = {(o.schema, o.name): o for o in declared.of_kind("trigger", schemas)}
    for (schema, name), obj in sorted(declared_triggers.items()):
        if (schema, name) not in have.triggers:
            diffs.append(Difference("missing trigger", schema, obj.table, name))
    for (schema, name), table in sorted(have.triggers.items()):
        if (schema, name) not in declared_triggers:
            diffs.append(Difference("hand-made trigger", schema, table, name))
    return diffs
