"""Index suggestions for the top statements, read with PostgreSQL's own grammar (pglast).

For each statement: the tables it reads (FROM, JOIN, UPDATE/DELETE targets), the columns
its WHERE clause compares with a constant or a parameter (``=``, ``IN``, ``ANY`` as
equality; ``<``, ``>``, ``BETWEEN`` as a range), ANDed at the top level (an OR needs
more than one index), and its ORDER BY columns. A table gets a suggestion when it is
large (``reltuples`` at least ``MIN_ROWS``) and none of its valid B-tree indexes leads
with one of those columns: the index to build is the equality columns, then the first
range column or the sort columns (the order a B-tree can use).

It is a hint, not a verdict: the planner decides, and the Statement page shows its
EXPLAIN. What is offered is the Django migration to write (``AddIndexConcurrently`` on a
large table, so writes continue) when the table is a model's, else the SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pglast
from django.apps import apps
from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, SortByDir

from diagnostics.runner import Query, Result, run
from portal.db import declared

MIN_ROWS = 10_000
CONCURRENTLY_FROM_ROWS = 100_000
_EQUALITY = {"="}
_RANGE = {"<", ">", "<=", ">="}


@dataclass
class Usage:
    """What one statement asks of one table."""

    schema: str | None
    table: str
    equality: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)

    def add(self, bucket: list, item: Any) -> None:
        if item not in bucket:
            bucket.append(item)

    @property
    def wanted(self) -> list[str]:
        cols = list(self.equality)
        if self.ranges:
            cols.append(self.ranges[0])
        elif self.sort:
            cols.extend(c for c, _desc in self.sort)
        out: list[str] = []
        for c in cols:
            if c not in out:
                out.append(c)
        return out

    @property
    def leading(self) -> set[str]:
        """Columns an existing index could lead with and still serve the statement."""
        return {*self.equality, *self.ranges[:1], *[c for c, _ in self.sort[:1]]}


def _is_value(node: Any) -> bool:
    if isinstance(node, ast.TypeCast):
        return _is_value(node.arg)
    return isinstance(node, ast.A_Const | ast.ParamRef)


def _column(node: Any) -> tuple[str | None, str] | None:
    if isinstance(node, ast.TypeCast):
        return _column(node.arg)
    if isinstance(node, ast.ColumnRef):
        fields: Any = node.fields or ()
        names: list[str] = [f.sval for f in fields if isinstance(f, ast.String) and f.sval]
        if len(names) == len(fields) and 1 <= len(names) <= 3:
            return (names[-2] if len(names) > 1 else None), names[-1]
    return None


def _conjuncts(node: Any) -> Iterator[Any]:
    if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.AND_EXPR:
        args: Any = node.args or ()
        for arg in args:
            yield from _conjuncts(arg)
    elif node is not None:
        yield node


def _predicates(node: Any) -> Iterator[tuple[tuple[str | None, str], str]]:
    """((qualifier, column), "eq" | "range") for each usable top-level condition."""
    for c in _conjuncts(node):
        if not isinstance(c, ast.A_Expr):
            continue
        op = c.name[0].sval if c.name and isinstance(c.name[0], ast.String) else ""
        if c.kind == A_Expr_Kind.AEXPR_OP and (op in _EQUALITY or op in _RANGE):
            kind = "eq" if op in _EQUALITY else "range"
            for col_side, value_side in ((c.lexpr, c.rexpr), (c.rexpr, c.lexpr)):
                col = _column(col_side)
                if col and _is_value(value_side):
                    yield col, kind
                    break
        elif c.kind == A_Expr_Kind.AEXPR_IN and op == "=":
            col = _column(c.lexpr)
            if col:
                yield col, "eq"
        elif c.kind == A_Expr_Kind.AEXPR_OP_ANY and op == "=":
            col = _column(c.lexpr)
            if col and _is_value(c.rexpr):
                yield col, "eq"
        elif c.kind in (A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_BETWEEN_SYM):
            col = _column(c.lexpr)
            if col:
                yield col, "range"


def _relations(node: Any, out: dict[str, tuple[str | None, str]]) -> None:
    if isinstance(node, ast.RangeVar):
        rangevar: Any = node
        key = rangevar.alias.aliasname if rangevar.alias else rangevar.relname
        out[key] = (rangevar.schemaname, rangevar.relname)
    elif isinstance(node, ast.JoinExpr):
        _relations(node.larg, out)
        _relations(node.rarg, out)


def _statements(tree: Iterable[Any]) -> Iterator[Any]:
    """Every SELECT/UPDATE/DELETE in the tree (CTEs, subqueries, set operations)."""
    for raw in tree:
        for node in _walk(raw):
            if isinstance(node, ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt):
                yield node


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from _walk(getattr(node, name))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


def usages(text: str) -> list[Usage]:
    """What the statement filters and sorts on, per table; [] if it cannot be parsed."""
    try:
        tree = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return []
    found: dict[tuple[str | None, str], Usage] = {}
    for stmt in _statements(tree):
        relations: dict[str, tuple[str | None, str]] = {}
        if isinstance(stmt, ast.SelectStmt):
            for item in stmt.fromClause or ():
                _relations(item, relations)
        else:
            _relations(stmt.relation, relations)
            for item in getattr(stmt, "fromClause", None) or getattr(stmt, "usingClause", ()) or ():
                _relations(item, relations)
        if not relations:
            continue

        def usage_of(qualifier: str | None, relations=relations) -> Usage | None:
            if qualifier is None:
                if len(relations) != 1:
                    return None  # an unqualified column of a join: its table is unknown
                schema, table = next(iter(relations.values()))
            elif qualifier in relations:
                schema, table = relations[qualifier]
            else:
                return None
            return found.setdefault((schema, table), Usage(schema, table))

        for (qualifier, column), kind in _predicates(stmt.whereClause):
            usage = usage_of(qualifier)
            if usage is not None:
                usage.add(usage.equality if kind == "eq" else usage.ranges, column)
        sort = [s for s in getattr(stmt, "sortClause", None) or () if isinstance(s, ast.SortBy)]
        cols = [(_column(s.node), s.sortby_dir == SortByDir.SORTBY_DESC) for s in sort]
        if cols and all(c is not None for c, _ in cols):
            targets = [usage_of(c[0]) for c, _ in cols if c is not None]
            usage = targets[0]
            if usage is not None and all(t is usage for t in targets):
                for c, desc in cols:
                    assert c is not None
                    usage.add(usage.sort, (c[1], desc))
    return [u for u in found.values() if u.equality or u.ranges or u.sort]


@dataclass(frozen=True)
class TableFacts:
    name: str  # as asked
    schema: str
    table_name: str
    reltuples: float
    leading_columns: list[str]  # first key column of each valid B-tree index
    columns: list[str]


TABLE_FACTS = Query(
    "suggestion_tables",
    """
SELECT q.name, n.nspname AS schema, c.relname AS table_name, c.reltuples::float8 AS reltuples,
       coalesce((SELECT array_agg(DISTINCT a.attname::text)
                 FROM pg_index i
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = c.oid AND i.indisvalid
                   AND (SELECT relam FROM pg_class WHERE oid = i.indexrelid)
                       = (SELECT oid FROM pg_am WHERE amname = 'btree')), '{}') AS leading_columns,
       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}')
           AS columns
FROM unnest(%(names)s::text[]) AS q(name)
JOIN pg_class c ON c.oid = to_regclass(q.name)
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
""",
    TableFacts,
)


def _qualified(schema: str | None, table: str) -> str:
    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    return f"{q(schema)}.{q(table)}" if schema else q(table)


@dataclass(frozen=True)
class Suggestion:
    schema: str
    table_name: str
    reltuples: float
    columns: tuple[str, ...]
    queryids: tuple[int, ...]
    sql: str
    migration: str | None  # the Django migration to write, when the table is a model's
    model: str | None


def index_name(table: str, columns: Iterable[str]) -> str:
    """A Django-valid index name (30 characters at most), stable for the same columns."""
    cols = list(columns)
    digest = hashlib.sha256(f"{table}:{','.join(cols)}".encode()).hexdigest()[:6]
    stem = f"{table[:10].rstrip('_')}_{'_'.join(c[:5] for c in cols)}"[:19].rstrip("_")
    return f"{stem}_{digest}_idx"


def _model_for(schema: str, table: str) -> Any:
    for model in apps.get_models():
        db_table = model._meta.db_table
        if db_table in (f'{schema}"."{table}', table if schema == "public" else None):
            return model
    return None


def _migration(model: Any, columns: tuple[str, ...], name: str, concurrently: bool) -> str | None:
    by_column = {f.column: f.name for f in model._meta.concrete_fields}
    if not all(c in by_column for c in columns):
        return None
    fields = ", ".join(repr(by_column[c]) for c in columns)
    latest = declared.latest_migration(model._meta.app_label)
    operation = "AddIndexConcurrently" if concurrently else "migrations.AddIndex"
    lines = [
        "from django.db import migrations, models",
        *(
            ["from django.contrib.postgres.operations import AddIndexConcurrently"]
            if concurrently
            else []
        ),
        "",
        "",
        "class Migration(migrations.Migration):",
        *(
            ["    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction"]
            if concurrently
            else []
        ),
        f"    dependencies = [({model._meta.app_label!r}, {latest!r})]",
        "",
        "    operations = [",
        f"        {operation}(",
        f"            model_name={model._meta.model_name!r},",
        f"            index=models.Index(fields=[{fields}], name={name!r}),",
        "        ),",
        "    ]",
    ]
    return "\n".join(lines)


def suggest(alias: str, statements: Iterable[tuple[int | None, str]]) -> Result[Suggestion]:
    """Suggestions for ``(queryid, text)`` pairs, one per (table, columns)."""
    wanted: dict[tuple[str | None, str], list[tuple[int | None, Usage]]] = {}
    for queryid, text in statements:
        for usage in usages(text):
            wanted.setdefault((usage.schema, usage.table), []).append((queryid, usage))
    if not wanted:
        return Result()
    names = {key: _qualified(*key) for key in wanted}
    facts = run(alias, TABLE_FACTS, {"names": list(names.values())})
    if not facts.ok:
        return Result(error=facts.error, sqlstate=facts.sqlstate, error_detail=facts.error_detail)
    by_name = {f.name: f for f in facts}
    merged: dict[tuple[str, str, tuple[str, ...]], tuple[TableFacts, set[int]]] = {}
    for key, uses in wanted.items():
        fact = by_name.get(names[key])
        if fact is None or fact.reltuples < MIN_ROWS:
            continue
        for queryid, usage in uses:
            cols = tuple(c for c in usage.wanted if c in fact.columns)
            if not cols or usage.leading & set(fact.leading_columns):
                continue
            entry = merged.setdefault((fact.schema, fact.table_name, cols), (fact, set()))
            if queryid is not None:
                entry[1].add(queryid)
    out = []
    for (schema, table, cols), (fact, queryids) in sorted(merged.items()):
        concurrently = fact.reltuples >= CONCURRENTLY_FROM_ROWS
        name = index_name(table, cols)
        column_list = ", ".join(_qualified(None, c) for c in cols)
        statement = (
            f"CREATE INDEX CONCURRENTLY {_qualified(None, name)} ON "
            f"{_qualified(schema, table)} ({column_list});"
        )
        model = _model_for(schema, table)
        out.append(
            Suggestion(
                schema,
                table,
                fact.reltuples,
                cols,
                tuple(sorted(queryids)),
                statement,
                _migration(model, cols, name, concurrently) if model else None,
                model._meta.label if model else None,
            )
        )
    return Result(rows=tuple(out))
