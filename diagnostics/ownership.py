"""Which indexes and constraints the project's migrations declare, and in which migration.

The Indexes page must never offer a hand ``DROP INDEX`` for an index a migration
created (``core.exec_history_document_idx`` is what full-text search runs on): the
next ``migrate`` or a fresh database would bring it back, and until then the code that
relies on it is slow. The advice for such an index is the migration to write.

The declared names come from the migration state, not from guessing: every managed
model of the final state is turned into its DDL by Django's own schema editor (generated
with ``collect_sql``, never run), and that DDL is parsed with PostgreSQL's grammar
(pglast). Unnamed inline constraints get the names PostgreSQL gives them
(``<table>_pkey``, ``<table>_<column>_key``). Each object is attributed to the migration
that names it (``AddIndex``, ``AddIndexConcurrently``, ``AddConstraint``, ``CreateModel``
options, ``RunSQL``); an auto-named one (``db_index=True``, a foreign key, ``unique``)
to the last migration of its app that adds or alters the field.

Reading migrations takes about half a second, so the result is computed once per
process (migration files do not change while it runs).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pglast
from django.db import connections
from django.db.migrations import operations as ops
from django.db.migrations.loader import MigrationLoader
from pglast.enums import AlterTableType, ConstrType

from portal.db.names import split_table

NAMEDATALEN = 64


@dataclass(frozen=True)
class Declared:
    """One object a migration creates (``table`` is the relation it belongs to)."""

    kind: str  # index, constraint
    schema: str
    table: str
    name: str
    app_label: str
    migration: str
    model: str  # app_label.ModelName
    explicit: bool  # named in a migration (Meta.indexes, constraints, RunSQL); else auto-named

    @property
    def model_name(self) -> str:
        return self.model.rsplit(".", 1)[-1].lower()

    @property
    def removal(self) -> str:
        """The migration operation that removes it, for the advice."""
        if self.kind == "constraint" or not self.explicit:
            return (
                f"change {self.model} (drop the field's db_index / unique, or the constraint),"
                " then run manage.py makemigrations"
            )
        return (
            f"delete it from {self.model}.Meta.indexes and write the migration: "
            f"RemoveIndexConcurrently(model_name={self.model_name!r}, name={self.name!r}) "
            "(django.contrib.postgres.operations, in a migration with atomic = False)"
        )


def make_object_name(name1: str, name2: str | None, label: str) -> str:
    """PostgreSQL's makeObjectName (indexcmds.c): shorten the longer part until it fits."""
    overhead = len(label) + 1 + (len(name2) + 1 if name2 else 0)
    available = NAMEDATALEN - 1 - overhead
    n1, n2 = len(name1), len(name2 or "")
    while n1 + n2 > available:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    return "_".join([name1[:n1], *([name2[:n2]] if name2 else []), label])


def _created(sql: str) -> Iterator[tuple[str, str, str, str, tuple[str, ...]]]:
    """(kind, schema, table, name, columns) of the indexes and constraints in ``sql``."""
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return
    for raw in statements:
        stmt: Any = raw.stmt
        node = type(stmt).__name__
        if node == "CreateStmt":
            schema, table = stmt.relation.schemaname or "public", stmt.relation.relname
            for element in stmt.tableElts or ():
                if type(element).__name__ == "Constraint" and element.conname:
                    columns = tuple(k.sval for k in element.keys or () if hasattr(k, "sval"))
                    yield "constraint", schema, table, element.conname, columns
                    if element.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                        yield "index", schema, table, element.conname, columns
                    continue
                if type(element).__name__ != "ColumnDef":
                    continue
                for con in element.constraints or ():
                    label = {ConstrType.CONSTR_PRIMARY: "pkey", ConstrType.CONSTR_UNIQUE: "key"}
                    if con.contype in label:
                        unique = con.contype == ConstrType.CONSTR_UNIQUE
                        column = element.colname if unique else None
                        name = con.conname or make_object_name(table, column, label[con.contype])
                        yield "index", schema, table, name, (element.colname,)
                        yield "constraint", schema, table, name, (element.colname,)
        elif node == "IndexStmt" and stmt.idxname:
            columns = tuple(p.name for p in stmt.indexParams or () if p.name)
            schema = stmt.relation.schemaname or "public"
            yield "index", schema, stmt.relation.relname, stmt.idxname, columns
        elif node == "AlterTableStmt" and stmt.relation is not None:
            schema, table = stmt.relation.schemaname or "public", stmt.relation.relname
            for cmd in stmt.cmds or ():
                con = cmd.def_
                if cmd.subtype == AlterTableType.AT_AddConstraint and con.conname:
                    columns = tuple(k.sval for k in con.keys or () if hasattr(k, "sval"))
                    columns += tuple(k.sval for k in con.fk_attrs or () if hasattr(k, "sval"))
                    yield "constraint", schema, table, con.conname, columns
                    if con.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                        yield "index", schema, table, con.conname, columns


def _named_in(operation: Any) -> Iterator[str]:
    """The index and constraint names an operation spells out."""
    for attr in ("index", "constraint"):
        obj = getattr(operation, attr, None)
        if obj is not None and getattr(obj, "name", None):
            yield obj.name
    if isinstance(operation, ops.CreateModel):
        for obj in [
            *operation.options.get("indexes", ()),
            *operation.options.get("constraints", ()),
        ]:
            yield obj.name
    if isinstance(operation, ops.RunSQL):
        statements = operation.sql if isinstance(operation.sql, list | tuple) else [operation.sql]
        for statement in statements:
            text = statement[0] if isinstance(statement, list | tuple) else statement
            for _kind, _schema, _table, name, _cols in _created(str(text)):
                yield name
    if isinstance(operation, ops.SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from _named_in(inner)


def _fields_touched(operation: Any) -> Iterator[tuple[str, str]]:
    """(model_name, field_name) pairs an operation adds or alters."""
    if isinstance(operation, ops.CreateModel):
        for field_name, _field in operation.fields:
            yield operation.name_lower, field_name
    elif isinstance(operation, ops.AddField | ops.AlterField):
        yield operation.model_name_lower, operation.name
    elif isinstance(operation, ops.SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from _fields_touched(inner)


def applies(alias: str) -> bool:
    """Whether ``alias`` is the project's own database (the one its migrations build)."""
    mine, other = connections.settings["default"], connections.settings[alias]
    return all(mine.get(k) == other.get(k) for k in ("HOST", "PORT", "NAME"))


def _declare() -> dict[tuple[str, str, str], Declared]:
    # collect_sql only generates statements: nothing reaches the database.
    connection = connections["default"]
    loader = MigrationLoader(None, ignore_no_migrations=True)
    state = loader.project_state()
    plan: list[tuple[str, str]] = []
    for leaf in loader.graph.leaf_nodes():
        plan.extend(node for node in loader.graph.forwards_plan(leaf) if node not in plan)
    named: dict[str, tuple[str, str]] = {}  # name -> (app, migration) that first names it
    touched: dict[tuple[str, str, str], str] = {}  # (app, model, field) -> last migration
    for app_label, migration_name in plan:
        migration = loader.graph.nodes[(app_label, migration_name)]
        for operation in migration.operations:
            for name in _named_in(operation):
                named.setdefault(name, (app_label, migration_name))
            for model_name, field_name in _fields_touched(operation):
                touched[(app_label, model_name, field_name)] = migration_name
    found: dict[tuple[str, str, str], Declared] = {}
    for model in state.apps.get_models(include_auto_created=True):
        meta = model._meta
        if not meta.managed or meta.proxy or meta.swapped or meta.auto_created:
            continue
        schema, _table = split_table(meta.db_table)
        with connection.schema_editor(collect_sql=True, atomic=False) as editor:
            editor.create_model(model)
        by_column = {f.column: f.name for f in meta.local_fields if getattr(f, "column", None)}
        for kind, sql_schema, table, name, columns in _created("\n".join(editor.collected_sql)):
            schema_name = schema or sql_schema
            origin = named.get(name)
            explicit = origin is not None
            if origin is None:
                fields = [by_column[c] for c in columns if c in by_column]
                model_name = meta.model_name or ""
                migrations = [
                    touched[(meta.app_label, model_name, f)]
                    for f in fields
                    if (meta.app_label, model_name, f) in touched
                ]
                origin = (meta.app_label, max(migrations) if migrations else "")
            found[(kind, schema_name, name)] = Declared(
                kind, schema_name, table, name, origin[0], origin[1], meta.label, explicit
            )
    return found


@functools.cache
def _leaves() -> dict[str, str]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return dict(loader.graph.leaf_nodes())


def latest_migration(app_label: str) -> str:
    """The app's last migration: what a new migration of that app depends on."""
    return _leaves().get(app_label, "")


@functools.cache
def _declared() -> dict[tuple[str, str, str], Declared]:
    return _declare()


def declared_objects() -> list[Declared]:
    return list(_declared().values())


def declared_index(alias: str, schema: str, name: str) -> Declared | None:
    """The migration that declares index ``schema.name`` of database ``alias``, or None
    if none does (or ``alias`` is not the project's database)."""
    if not applies(alias):
        return None
    return _declared().get(("index", schema, name))


def declared_constraint(alias: str, schema: str, name: str) -> Declared | None:
    if not applies(alias):
        return None
    return _declared().get(("constraint", schema, name))


def with_owner(
    alias: str, rows: Iterable[Any], name: str = "name"
) -> list[tuple[Any, Declared | None]]:
    """Each row (with ``schema`` and an index name in attribute ``name``) paired with the
    migration that declares that index, or None for a hand-made one."""
    return [(row, declared_index(alias, row.schema, getattr(row, name))) for row in rows]
