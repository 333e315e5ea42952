"""Vacuum and freezing: dead tuples, vacuum progress, wraparound, sequence exhaustion.

Transaction ID age is a per-database danger (``pg_database.datfrozenxid``) driven by
the oldest tables (``pg_class.relfrozenxid``): PostgreSQL stops assigning XIDs near
2^31, and autovacuum forces freezing at ``autovacuum_freeze_max_age``.

A sequence's real limit is the smaller of its MAXVALUE and its column's type: an
``integer`` column fed by a ``bigint`` sequence fails at 2^31 - 1. Reading a
sequence's position needs SELECT or USAGE on it; without that the sequence is
listed as unreadable, never guessed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import sql

from diagnostics.runner import Query, Result, run

XID_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class TableVacuum:
    schema: str
    table_name: str
    n_live_tup: int
    n_dead_tup: int
    n_mod_since_analyze: int
    last_vacuum: dt.datetime | None
    last_autovacuum: dt.datetime | None
    last_analyze: dt.datetime | None
    last_autoanalyze: dt.datetime | None
    vacuum_count: int
    autovacuum_count: int
    autovacuum_threshold: float | None  # None: autovacuum will not vacuum it for dead rows
    autovacuum_off: str | None  # why, when it is off: the table's or the server's setting
    table_settings: str | None  # the table's own autovacuum_* reloptions, as set
    heap_blks_hit: int | None
    heap_blks_read: int | None
    idx_blks_hit: int | None
    idx_blks_read: int | None
    total: int

    @property
    def dead_ratio(self) -> float | None:
        total = self.n_live_tup + self.n_dead_tup
        return self.n_dead_tup / total if total else None

    @property
    def last_vacuumed(self) -> dt.datetime | None:
        stamps = [s for s in (self.last_vacuum, self.last_autovacuum) if s]
        return max(stamps) if stamps else None

    @property
    def last_analyzed(self) -> dt.datetime | None:
        stamps = [s for s in (self.last_analyze, self.last_autoanalyze) if s]
        return max(stamps) if stamps else None

    @property
    def heap_hit_ratio(self) -> float | None:
        total = (self.heap_blks_hit or 0) + (self.heap_blks_read or 0)
        return (self.heap_blks_hit or 0) / total if total else None

    @property
    def index_hit_ratio(self) -> float | None:
        total = (self.idx_blks_hit or 0) + (self.idx_blks_read or 0)
        return (self.idx_blks_hit or 0) / total if total else None


# "Autovacuum at" is the dead-row count at which autovacuum vacuums the table, computed
# as autovacuum does (relation_needs_vacanalyze): the table's own reloptions override
# the server's settings, reltuples < 0 (never vacuumed nor analyzed) counts as 0, and
# from PostgreSQL 18 the result is capped by autovacuum_vacuum_max_threshold (-1: no
# cap). autovacuum_enabled = off on the table (or autovacuum = off on the server) means
# it is never vacuumed for dead rows, only to prevent wraparound.
_TABLES = """
WITH t AS (
  SELECT s.relid, s.schemaname AS schema, s.relname AS table_name, s.n_live_tup, s.n_dead_tup,
         s.n_mod_since_analyze, s.last_vacuum, s.last_autovacuum, s.last_analyze,
         s.last_autoanalyze, s.vacuum_count, s.autovacuum_count,
         c.reltuples, c.reloptions, o.enabled, o.base, o.scale, o.cap
  FROM pg_stat_user_tables s
  JOIN pg_class c ON c.oid = s.relid
  LEFT JOIN LATERAL (
    SELECT max(option_value) FILTER (WHERE option_name = 'autovacuum_enabled') AS enabled,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_threshold')
               AS base,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_scale_factor')
               AS scale,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_max_threshold')
               AS cap
    FROM pg_options_to_table(c.reloptions)
  ) o ON true
  WHERE (%(search)s::text IS NULL
         OR s.schemaname || '.' || s.relname ILIKE %(search)s::text)
),
computed AS (
  SELECT t.*,
         CASE WHEN NOT coalesce(t.enabled::boolean, true)
                THEN 'autovacuum_enabled = off on this table'
              WHEN NOT current_setting('autovacuum')::boolean
                THEN 'autovacuum = off on the server'
         END AS autovacuum_off,
         coalesce(t.base, current_setting('autovacuum_vacuum_threshold'))::float8
           + coalesce(t.scale, current_setting('autovacuum_vacuum_scale_factor'))::float8
             * greatest(t.reltuples, 0) AS uncapped,
         {cap} AS cap_value,
         (SELECT string_agg(o, ', ' ORDER BY o) FROM unnest(t.reloptions) AS o
          WHERE o LIKE 'autovacuum%%') AS table_settings
  FROM t
),
final AS (
  SELECT c.*,
         CASE WHEN c.autovacuum_off IS NULL THEN
           CASE WHEN c.cap_value >= 0 THEN least(c.uncapped, c.cap_value) ELSE c.uncapped END
         END AS autovacuum_threshold
  FROM computed c
),
page AS (
  SELECT f.*, (count(*) OVER ())::int AS total
  FROM final f
  ORDER BY {order}, f.schema, f.table_name
  LIMIT %(limit)s OFFSET %(offset)s
)
-- Block counters only for the rows shown: pg_statio_user_tables adds up every index.
SELECT f.schema, f.table_name, f.n_live_tup, f.n_dead_tup, f.n_mod_since_analyze,
       f.last_vacuum, f.last_autovacuum, f.last_analyze, f.last_autoanalyze, f.vacuum_count,
       f.autovacuum_count, f.autovacuum_threshold, f.autovacuum_off, f.table_settings,
       io.heap_blks_hit, io.heap_blks_read, io.idx_blks_hit, io.idx_blks_read, f.total
FROM page f
LEFT JOIN LATERAL (SELECT * FROM pg_statio_user_tables s WHERE s.relid = f.relid) io ON true
ORDER BY {order}, f.schema, f.table_name
"""

# Sort keys of the tables list; anything else falls back to dead rows.
TABLE_ORDERS = {
    "dead": "f.n_dead_tup DESC, f.n_mod_since_analyze DESC",
    "dead_ratio": "f.n_dead_tup::float8 / greatest(f.n_live_tup + f.n_dead_tup, 1) DESC",
    "live": "f.n_live_tup DESC",
    "due": "f.n_dead_tup::float8 / nullif(f.autovacuum_threshold, 0) DESC NULLS LAST",
    "changed": "f.n_mod_since_analyze DESC",
    "vacuumed": "greatest(f.last_vacuum, f.last_autovacuum) ASC NULLS FIRST",
    "analyzed": "greatest(f.last_analyze, f.last_autoanalyze) ASC NULLS FIRST",
    "name": "f.schema, f.table_name",
}


def _tables_query(order: str, server_major: int) -> Query[TableVacuum]:
    cap = (
        "coalesce(t.cap, current_setting('autovacuum_vacuum_max_threshold'))::float8"
        if server_major >= 18
        else "-1::float8"
    )
    return Query(
        f"tables_{order}_v{18 if server_major >= 18 else 13}",
        sql.SQL(_TABLES).format(
            cap=sql.SQL(cap), order=sql.SQL(TABLE_ORDERS.get(order, TABLE_ORDERS["dead"]))
        ),
        TableVacuum,
    )


def tables(
    alias: str,
    *,
    server_major: int,
    order: str = "dead",
    search: str | None = None,
    offset: int = 0,
    limit: int = 25,
) -> Result[TableVacuum]:
    """One page of the tables of this database, with their vacuum state."""
    pattern = None
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
    return run(
        alias,
        _tables_query(order, server_major),
        {"search": pattern, "offset": offset, "limit": limit},
    )


def dead_tuples(alias: str, *, server_major: int, limit: int = 25) -> Result[TableVacuum]:
    """The tables with the most dead rows."""
    return tables(alias, server_major=server_major, order="dead", limit=limit)


@dataclass(frozen=True)
class VacuumProgress:
    pid: int
    table_name: str | None
    phase: str | None
    heap_blks_total: int | None
    heap_blks_scanned: int | None
    heap_blks_vacuumed: int | None
    index_vacuum_count: int | None
    is_autovacuum: bool
    seconds: float | None

    @property
    def scanned_ratio(self) -> float | None:
        if not self.heap_blks_total or self.heap_blks_scanned is None:
            return None
        return self.heap_blks_scanned / self.heap_blks_total


VACUUM_PROGRESS = Query(
    "vacuum_progress",
    """
SELECT p.pid, p.relid::regclass::text AS table_name, p.phase, p.heap_blks_total,
       p.heap_blks_scanned, p.heap_blks_vacuumed, p.index_vacuum_count,
       coalesce(a.backend_type = 'autovacuum worker', false) AS is_autovacuum,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float AS seconds
FROM pg_stat_progress_vacuum p
LEFT JOIN pg_stat_activity a ON a.pid = p.pid
WHERE p.datname = current_database()
ORDER BY a.xact_start NULLS LAST
""",
    VacuumProgress,
)


def vacuum_progress(alias: str) -> Result[VacuumProgress]:
    return run(alias, VACUUM_PROGRESS)


@dataclass(frozen=True)
class DatabaseAge:
    database: str
    xid_age: int
    mxid_age: int
    is_current: bool

    @property
    def wraparound_ratio(self) -> float:
        return self.xid_age / XID_LIMIT


DATABASE_AGES = Query(
    "database_ages",
    """
SELECT datname AS database, age(datfrozenxid)::bigint AS xid_age,
       mxid_age(datminmxid)::bigint AS mxid_age, datname = current_database() AS is_current
FROM pg_database
WHERE datallowconn OR datname = current_database()
ORDER BY age(datfrozenxid) DESC, datname
""",
    DatabaseAge,
)


def database_ages(alias: str) -> Result[DatabaseAge]:
    return run(alias, DATABASE_AGES)


@dataclass(frozen=True)
class TableAge:
    name: str
    relkind: str
    xid_age: int
    mxid_age: int

    @property
    def wraparound_ratio(self) -> float:
        return self.xid_age / XID_LIMIT


# TOAST tables are shown as their owning table.
TABLE_AGES = Query(
    "table_ages",
    """
SELECT coalesce((SELECT t.oid::regclass::text || ' (TOAST)' FROM pg_class t
                 WHERE t.reltoastrelid = c.oid), c.oid::regclass::text) AS name,
       c.relkind::text AS relkind, age(c.relfrozenxid)::bigint AS xid_age,
       mxid_age(c.relminmxid)::bigint AS mxid_age
FROM pg_class c
WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'::xid
ORDER BY age(c.relfrozenxid) DESC
LIMIT %(limit)s
""",
    TableAge,
)


def table_ages(alias: str, *, limit: int = 10) -> Result[TableAge]:
    return run(alias, TABLE_AGES, {"limit": limit})


@dataclass(frozen=True)
class SequenceUsage:
    schema: str
    name: str
    data_type: str
    column: str | None
    column_type: str | None
    increment_by: int
    cycle: bool
    last_value: int | None
    limit_value: int
    values_left: int | None
    readable: bool
    used_ratio: float | None
    readable_total: int
    unreadable_total: int
    grant_statement: str


# One row per (sequence, column it feeds): the column that owns it (serial, identity:
# pg_depend 'a'/'i') and every column whose DEFAULT calls nextval() on it (pg_attrdef
# depends on the sequence, 'n'), each limited by its own type: a bigint sequence used by
# an integer column's default runs out at 2^31 - 1 there. A sequence no column uses has
# one row, limited by its own MAXVALUE/MINVALUE.
SEQUENCES = Query(
    "sequences",
    """
WITH seq AS MATERIALIZED (
  SELECT c.oid, n.nspname AS schema, c.relname AS name,
         format_type(s.seqtypid, NULL) AS data_type, s.seqmin, s.seqmax, s.seqstart,
         s.seqincrement, s.seqcycle,
         has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT pg_is_other_temp_schema(n.oid)
),
feeds AS (
  SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS attnum
  FROM pg_depend d
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
    AND d.objid IN (SELECT oid FROM seq)
  UNION
  SELECT d.refobjid, ad.adrelid, ad.adnum
  FROM pg_depend d
  JOIN pg_attrdef ad ON ad.oid = d.objid
  WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.refobjid IN (SELECT oid FROM seq)
),
uses AS (
  SELECT seq.*, f.rel::regclass::text || '.' || quote_ident(a.attname) AS column_ref,
         format_type(a.atttypid, NULL) AS column_type
  FROM seq
  LEFT JOIN feeds f ON f.seq = seq.oid
  LEFT JOIN pg_attribute a ON a.attrelid = f.rel AND a.attnum = f.attnum
                          AND NOT a.attisdropped
),
measured AS (
  SELECT uses.*,
         CASE WHEN readable THEN pg_sequence_last_value(oid) END AS last_value,
         CASE WHEN seqincrement > 0 THEN
                least(seqmax, CASE column_type WHEN 'smallint' THEN 32767
                                               WHEN 'integer' THEN 2147483647
                                               ELSE seqmax END)
              ELSE
                greatest(seqmin, CASE column_type WHEN 'smallint' THEN -32768
                                                  WHEN 'integer' THEN -2147483648
                                                  ELSE seqmin END)
         END AS limit_value
  FROM uses
),
ranked AS (
  SELECT measured.*,
         CASE WHEN last_value IS NULL OR seqcycle THEN NULL
              WHEN seqincrement > 0 THEN
                (last_value::numeric - seqmin) / nullif(limit_value::numeric - seqmin, 0)
              ELSE (seqmax::numeric - last_value) / nullif(seqmax::numeric - limit_value, 0)
         END AS used_ratio,
         -- How many more nextval() calls succeed: from the last value handed out (or,
         -- before the first call, from START counting it) up to the limit, in steps.
         CASE WHEN seqcycle OR NOT readable THEN NULL
              WHEN last_value IS NULL THEN
                greatest(floor((limit_value::numeric - seqstart) / seqincrement) + 1, 0)
              ELSE greatest(floor((limit_value::numeric - last_value) / seqincrement), 0)
         END AS values_left
  FROM measured
),
totals AS (
  SELECT count(*) FILTER (WHERE readable) AS readable_total,
         count(*) FILTER (WHERE NOT readable) AS unreadable_total
  FROM seq
),
numbered AS (
  SELECT ranked.*, totals.*,
         row_number() OVER (PARTITION BY readable
                            ORDER BY used_ratio DESC NULLS LAST, schema, name, column_ref)
             AS rank
  FROM ranked CROSS JOIN totals
)
SELECT schema, name, data_type, column_ref AS column, column_type,
       seqincrement AS increment_by, seqcycle AS cycle, last_value, limit_value,
       values_left::numeric AS values_left, readable,
       used_ratio::float AS used_ratio, readable_total::int, unreadable_total::int,
       'GRANT SELECT ON SEQUENCE ' || quote_ident(schema) || '.' || quote_ident(name)
           || ' TO ' || quote_ident(current_user) || ';' AS grant_statement
FROM numbered
WHERE rank <= %(limit)s
ORDER BY readable DESC, used_ratio DESC NULLS LAST, schema, name, column_ref
""",
    SequenceUsage,
)


def sequences(alias: str, *, limit: int = 20) -> Result[SequenceUsage]:
    """The most used readable sequences, and up to ``limit`` unreadable ones."""
    return run(alias, SEQUENCES, {"limit": limit})
