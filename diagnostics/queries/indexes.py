"""Index health: unused, duplicate, invalid, and a bloat estimate for B-trees.

"Unused" counts scans since the statistics were last reset (``pg_stat_database.
stats_reset``) on *this* server only: scans on read replicas are not counted here.
Indexes that enforce something (primary key, unique, exclusion constraint) are
never reported as unused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from psycopg import sql

from diagnostics.runner import Query, Result, run

# pg_relation_size and pg_get_indexdef lock the table: skip relations another session
# holds (or awaits) in ACCESS EXCLUSIVE mode rather than wait behind its DDL.
_LOCKED = """
locked AS MATERIALIZED (
  SELECT DISTINCT l.relation FROM pg_locks l
  WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
    AND l.pid <> pg_backend_pid()
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)"""


@dataclass(frozen=True)
class UnusedIndex:
    schema: str
    name: str
    table_name: str
    idx_scan: int
    last_idx_scan: dt.datetime | None
    bytes: int | None
    definition: str | None  # None while the table is locked (reading it would wait)
    drop_statement: str
    unused_total: int
    unused_estimated_bytes: int


_UNUSED = """
WITH {locked},
candidates AS MATERIALIZED (
  SELECT s.indexrelid, s.relid, s.schemaname AS schema, s.indexrelname AS name,
         s.relname AS table_name, s.idx_scan, {last_idx_scan} AS last_idx_scan, c.relpages
  FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
  JOIN pg_class c ON c.oid = s.indexrelid
  WHERE s.idx_scan = 0 AND i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary
    AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid)
),
top AS (
  SELECT * FROM candidates ORDER BY relpages DESC, name LIMIT %(limit)s
)
SELECT schema, name, table_name, idx_scan, last_idx_scan,
       CASE WHEN EXISTS (SELECT 1 FROM locked WHERE relation IN (indexrelid, relid))
            THEN NULL ELSE pg_relation_size(indexrelid) END AS bytes,
       CASE WHEN NOT EXISTS (SELECT 1 FROM locked WHERE relation IN (indexrelid, relid))
            THEN pg_get_indexdef(indexrelid) END AS definition,
       'DROP INDEX CONCURRENTLY ' || quote_ident(schema) || '.' || quote_ident(name) || ';'
           AS drop_statement,
       (SELECT count(*) FROM candidates)::int AS unused_total,
       (SELECT coalesce(sum(relpages), 0) FROM candidates)::bigint
           * current_setting('block_size')::int AS unused_estimated_bytes
FROM top
ORDER BY bytes DESC NULLS LAST, name
"""

# pg_stat_user_indexes.last_idx_scan exists from PostgreSQL 16.
UNUSED_V16 = Query(
    "unused_indexes_v16",
    sql.SQL(_UNUSED).format(locked=sql.SQL(_LOCKED), last_idx_scan=sql.SQL("s.last_idx_scan")),
    UnusedIndex,
)
UNUSED_V13 = Query(
    "unused_indexes_v13",
    sql.SQL(_UNUSED).format(locked=sql.SQL(_LOCKED), last_idx_scan=sql.SQL("NULL::timestamptz")),
    UnusedIndex,
)


def unused_indexes(alias: str, *, server_major: int, limit: int = 50) -> Result[UnusedIndex]:
    query = UNUSED_V16 if server_major >= 16 else UNUSED_V13
    return run(alias, query, {"limit": limit})


@dataclass(frozen=True)
class DuplicateIndex:
    schema: str
    table_name: str
    name: str
    covered_by: str
    exact: bool
    reason: str  # same, include, prefix
    definition: str | None
    covered_by_definition: str | None
    constraint_name: str | None
    bytes: int | None
    drop_statement: str


# Index a is redundant next to b on the same table when a scan of a can always be done
# with b: same access method, expressions and predicate; a's key columns, each with its
# operator class, collation and sort order (ASC/DESC, NULLS FIRST/LAST), equal b's or
# (B-tree only) are a leading part of them; a's INCLUDE columns are all in b (as key or
# INCLUDE columns); and if a is unique, b is unique on exactly a's keys with the same
# NULLS [NOT] DISTINCT. So (x) INCLUDE (y) covers (x), and (a, b DESC) is not (a, b).
# When each covers the other, the non-unique one (or the newer one) is reported.
_DUPLICATES = """
WITH {locked},
idx AS MATERIALIZED (
  SELECT i.indexrelid, i.indrelid, i.indisunique, i.indisprimary, c.relam,
         {nulls_not_distinct} AS nulls_not_distinct,
         n.nspname AS schema, c.relname AS name, t.relname AS table_name,
         (string_to_array(i.indkey::text, ' ')::int[])[1:i.indnkeyatts] AS keys,
         coalesce((string_to_array(i.indkey::text, ' ')::int[])[i.indnkeyatts + 1:i.indnatts],
                  '{{}}') AS included,
         string_to_array(i.indclass::text, ' ')::oid[] AS classes,
         string_to_array(i.indcollation::text, ' ')::oid[] AS collations,
         string_to_array(i.indoption::text, ' ')::int[] AS options,
         coalesce(pg_get_expr(i.indexprs, i.indrelid), '') AS exprs,
         coalesce(pg_get_expr(i.indpred, i.indrelid), '') AS pred
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE i.indisvalid AND i.indisready
    AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
),
pairs AS (
  SELECT a.*, b.indexrelid AS b_oid, b.indrelid AS b_rel, b.name AS b_name,
         b.indisunique AS b_unique, b.indisprimary AS b_primary,
         a.keys = b.keys AND a.included <@ b.included AND b.included <@ a.included
             AS same_shape,
         a.keys = b.keys AS same_keys
  FROM idx a
  JOIN idx b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid AND b.relam = a.relam
  WHERE NOT a.indisprimary
    AND a.exprs = b.exprs AND a.pred = b.pred
    AND cardinality(a.keys) <= cardinality(b.keys)
    AND a.keys = b.keys[1:cardinality(a.keys)]
    AND a.classes = b.classes[1:cardinality(a.keys)]
    AND a.collations = b.collations[1:cardinality(a.keys)]
    AND a.options = b.options[1:cardinality(a.keys)]
    AND a.included <@ (b.keys || b.included)
    AND (a.keys = b.keys OR a.relam = (SELECT oid FROM pg_am WHERE amname = 'btree'))
    AND (NOT a.indisunique
         OR (b.indisunique AND a.keys = b.keys AND a.nulls_not_distinct = b.nulls_not_distinct))
)
SELECT DISTINCT ON (p.indexrelid)
       p.schema, p.table_name, p.name, p.b_name AS covered_by,
       p.same_shape AS exact,
       CASE WHEN p.same_shape THEN 'same' WHEN p.same_keys THEN 'include' ELSE 'prefix' END
           AS reason,
       CASE WHEN NOT EXISTS (SELECT 1 FROM locked WHERE relation IN (p.indexrelid, p.indrelid))
            THEN pg_get_indexdef(p.indexrelid) END AS definition,
       CASE WHEN NOT EXISTS (SELECT 1 FROM locked WHERE relation IN (p.b_oid, p.b_rel))
            THEN pg_get_indexdef(p.b_oid) END AS covered_by_definition,
       (SELECT k.conname FROM pg_constraint k WHERE k.conindid = p.indexrelid LIMIT 1)::text
           AS constraint_name,
       CASE WHEN EXISTS (SELECT 1 FROM locked WHERE relation IN (p.indexrelid, p.indrelid))
            THEN NULL ELSE pg_relation_size(p.indexrelid) END AS bytes,
       'DROP INDEX CONCURRENTLY ' || quote_ident(p.schema) || '.' || quote_ident(p.name) || ';'
           AS drop_statement
FROM pairs p
-- Mutual cover (same shape and uniqueness): report only one of the two.
WHERE NOT (p.same_shape AND p.indisunique = p.b_unique
           AND NOT p.b_primary AND p.indexrelid < p.b_oid)
ORDER BY p.indexrelid, p.b_unique DESC, p.b_oid
LIMIT %(limit)s
"""

# pg_index.indnullsnotdistinct exists from PostgreSQL 15 (before, NULLs were distinct).
DUPLICATES_V15 = Query(
    "duplicate_indexes_v15",
    sql.SQL(_DUPLICATES).format(
        locked=sql.SQL(_LOCKED), nulls_not_distinct=sql.SQL("i.indnullsnotdistinct")
    ),
    DuplicateIndex,
)
DUPLICATES_V13 = Query(
    "duplicate_indexes_v13",
    sql.SQL(_DUPLICATES).format(locked=sql.SQL(_LOCKED), nulls_not_distinct=sql.SQL("false")),
    DuplicateIndex,
)


def duplicate_indexes(alias: str, *, limit: int = 200) -> Result[DuplicateIndex]:
    # Every alias uses the PostgreSQL backend (portal.db); the stubs type the generic one.
    connection = cast(PostgresWrapper, connections[alias])
    query = DUPLICATES_V15 if connection.pg_version >= 150000 else DUPLICATES_V13
    return run(alias, query, {"limit": limit})


@dataclass(frozen=True)
class InvalidIndex:
    schema: str
    name: str
    table_name: str
    definition: str | None
    being_built: bool
    possibly_being_built: bool  # a hidden build runs on its table (see BUILD_HIDDEN)
    is_unique: bool
    drop_statement: str
    duplicates_query: str | None  # for a failed UNIQUE build: the rows it tripped over


# An index being built (CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY) is not valid
# yet. pg_stat_progress_create_index names it, but hides index_relid (and relid) from
# roles without pg_read_all_stats; its pid stays visible, and pg_locks (readable by
# every role) shows that session holding the table's ShareUpdateExclusiveLock for the
# whole build. That tells the table, not which of its invalid indexes: such an index
# is "possibly being built" (BUILD_HIDDEN), neither counted as failed nor as building.
BEING_BUILT = """
EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = {index})"""
BUILD_HIDDEN = """
EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
        JOIN pg_locks l ON l.pid = p.pid AND l.locktype = 'relation' AND l.granted
                       AND l.mode = 'ShareUpdateExclusiveLock'
        WHERE p.index_relid IS NULL AND l.relation = {table})"""


def build_conditions(index: str, table: str) -> tuple[sql.Composable, sql.Composable]:
    """(being built, possibly being built) for the pg_index row ``index``/``table``."""
    return (
        sql.SQL(BEING_BUILT.format(index=index)),
        sql.SQL("(NOT {} AND {})").format(
            sql.SQL(BEING_BUILT.format(index=index)), sql.SQL(BUILD_HIDDEN.format(table=table))
        ),
    )


# The duplicates that make a UNIQUE build fail: the key columns (or expressions, as
# pg_get_indexdef prints them) grouped, under the index's predicate, NULLs left out
# unless the index treats them as equal (NULLS NOT DISTINCT).
_INVALID = """
WITH {locked},
invalid AS (
  SELECT i.*, n.nspname AS schema, c.relname AS name, t.relname AS table_name,
         t.oid::regclass::text AS table_ref,
         coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct,
         EXISTS (SELECT 1 FROM locked WHERE relation IN (i.indexrelid, i.indrelid)) AS is_locked
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT i.indisvalid
)
SELECT v.schema, v.name, v.table_name,
       CASE WHEN NOT v.is_locked THEN pg_get_indexdef(v.indexrelid) END AS definition,
       {being_built} AS being_built,
       {possibly_being_built} AS possibly_being_built,
       v.indisunique AS is_unique,
       'DROP INDEX CONCURRENTLY ' || quote_ident(v.schema) || '.' || quote_ident(v.name)
           || ';' AS drop_statement,
       CASE WHEN v.indisunique AND NOT v.is_locked THEN (
         SELECT 'SELECT ' || string_agg(k.col, ', ' ORDER BY k.n) || ', count(*) FROM '
                || v.table_ref
                || ' WHERE ' || coalesce('(' || pg_get_expr(v.indpred, v.indrelid) || ')', 'true')
                || CASE WHEN v.nulls_not_distinct THEN ''
                        ELSE string_agg(' AND (' || k.col || ') IS NOT NULL', '' ORDER BY k.n)
                   END
                || ' GROUP BY ' || string_agg(k.col, ', ' ORDER BY k.n)
                || ' HAVING count(*) > 1 ORDER BY count(*) DESC LIMIT 100;'
         FROM (SELECT n, pg_get_indexdef(v.indexrelid, n, true) AS col
               FROM generate_series(1, v.indnkeyatts) AS n) k)
       END AS duplicates_query
FROM invalid v
ORDER BY v.schema, v.name
"""

_BUILDING, _POSSIBLY = build_conditions("v.indexrelid", "v.indrelid")
INVALID = Query(
    "invalid_indexes",
    sql.SQL(_INVALID).format(
        locked=sql.SQL(_LOCKED), being_built=_BUILDING, possibly_being_built=_POSSIBLY
    ),
    InvalidIndex,
)


def invalid_indexes(alias: str) -> Result[InvalidIndex]:
    return run(alias, INVALID)


@dataclass(frozen=True)
class IndexBloat:
    schema: str
    name: str
    table_name: str
    bytes: int
    expected_bytes: int | None
    bloat_bytes: int | None
    bloat_ratio: float | None
    has_stats: bool


# A B-tree leaf holds about (page - headers) * fillfactor / tuple bytes entries, where a
# tuple is its 8-byte header (+ null bitmap) and the columns' average widths from
# pg_stats, MAXALIGNed, plus a 4-byte line pointer. More pages than that need are
# counted as bloat. pg_stats only shows columns the role may read: others get no
# estimate (has_stats = false) rather than a wrong one. Deduplication (PostgreSQL 13+)
# makes indexes on repetitive values smaller than this model, never larger.
BLOAT = Query(
    "index_bloat",
    """
WITH idx AS MATERIALIZED (
  SELECT i.indexrelid, i.indrelid, n.nspname AS schema, c.relname AS name,
         t.relname AS table_name, tn.nspname AS table_schema, c.relpages, c.reltuples,
         i.indkey, i.indnatts,
         coalesce((SELECT substring(o FROM 'fillfactor=(\\d+)')::int
                   FROM unnest(c.reloptions) AS o WHERE o LIKE 'fillfactor=%%'), 90)
             AS fillfactor
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
  WHERE c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
    AND c.relpages >= %(min_pages)s AND c.reltuples > 0
    AND i.indexprs IS NULL AND i.indisvalid
    AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
  ORDER BY c.relpages DESC
  LIMIT %(candidates)s
),
cols AS (
  SELECT idx.indexrelid, s.avg_width, s.null_frac
  FROM idx
  CROSS JOIN LATERAL unnest(idx.indkey::int2[]) AS k(attnum)
  JOIN pg_attribute a ON a.attrelid = idx.indrelid AND a.attnum = k.attnum
  LEFT JOIN pg_stats s ON s.schemaname = idx.table_schema AND s.tablename = idx.table_name
                      AND s.attname = a.attname AND NOT s.inherited
),
est AS (
  SELECT indexrelid, count(*) = count(avg_width) AS has_stats,
         sum(avg_width * (1 - null_frac)) AS data_width, bool_or(null_frac > 0) AS has_nulls
  FROM cols GROUP BY indexrelid
),
model AS (
  SELECT idx.*, est.has_stats,
         -- MAXALIGN(header + data) + line pointer
         (ceil((8 + CASE WHEN est.has_nulls THEN 4 ELSE 0 END + est.data_width) / 8.0) * 8
          + 4) AS tuple_bytes,
         current_setting('block_size')::int AS bs
  FROM idx JOIN est USING (indexrelid)
),
expected AS (
  SELECT model.*,
         CASE WHEN has_stats THEN
           1 + ceil(reltuples / greatest(floor((bs - 24 - 16) * fillfactor / 100.0
                                                / tuple_bytes), 1))
         END AS expected_pages
  FROM model
)
SELECT schema, name, table_name, relpages::bigint * bs AS bytes,
       (expected_pages * bs)::bigint AS expected_bytes,
       (greatest(relpages - expected_pages, 0) * bs)::bigint AS bloat_bytes,
       (greatest(relpages - expected_pages, 0) / relpages)::float AS bloat_ratio,
       has_stats
FROM expected
ORDER BY has_stats DESC, bloat_bytes DESC NULLS LAST, relpages DESC
LIMIT %(limit)s
""",
    IndexBloat,
)


def index_bloat(
    alias: str, *, min_pages: int = 128, candidates: int = 500, limit: int = 50
) -> Result[IndexBloat]:
    """Estimates for the largest B-tree indexes (at least ``min_pages`` pages)."""
    return run(alias, BLOAT, {"min_pages": min_pages, "candidates": candidates, "limit": limit})


@dataclass(frozen=True)
class UnvalidatedConstraint:
    schema: str
    name: str
    table_name: str
    kind: str
    definition: str
    validate_statement: str


# Constraints added NOT VALID (foreign keys and CHECKs) and never validated: new rows are
# checked, existing ones may break them, and the planner cannot rely on them.
UNVALIDATED = Query(
    "unvalidated_constraints",
    """
SELECT n.nspname AS schema, k.conname AS name, t.relname AS table_name,
       CASE k.contype WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check'
                      WHEN 'n' THEN 'not null' ELSE k.contype::text END AS kind,
       pg_get_constraintdef(k.oid) AS definition,
       'ALTER TABLE ' || t.oid::regclass::text || ' VALIDATE CONSTRAINT '
           || quote_ident(k.conname) || ';' AS validate_statement
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE NOT k.convalidated
ORDER BY n.nspname, t.relname, k.conname
""",
    UnvalidatedConstraint,
)


def unvalidated_constraints(alias: str) -> Result[UnvalidatedConstraint]:
    return run(alias, UNVALIDATED)
