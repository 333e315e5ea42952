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
    autovacuum_threshold: float

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


DEAD_TUPLES = Query(
    "dead_tuples",
    """
SELECT s.schemaname AS schema, s.relname AS table_name, s.n_live_tup, s.n_dead_tup,
       s.n_mod_since_analyze, s.last_vacuum, s.last_autovacuum, s.last_analyze,
       s.last_autoanalyze, s.vacuum_count, s.autovacuum_count,
       current_setting('autovacuum_vacuum_threshold')::float8
         + current_setting('autovacuum_vacuum_scale_factor')::float8
           * greatest(c.reltuples, 0) AS autovacuum_threshold
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
ORDER BY s.n_dead_tup DESC, s.n_mod_since_analyze DESC, s.relname
LIMIT %(limit)s
""",
    TableVacuum,
)


def dead_tuples(alias: str, *, limit: int = 25) -> Result[TableVacuum]:
    return run(alias, DEAD_TUPLES, {"limit": limit})


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
    readable: bool
    used_ratio: float | None
    readable_total: int
    unreadable_total: int
    grant_statement: str


SEQUENCES = Query(
    "sequences",
    """
WITH seq AS MATERIALIZED (
  SELECT c.oid, n.nspname AS schema, c.relname AS name,
         format_type(s.seqtypid, NULL) AS data_type, s.seqmin, s.seqmax,
         s.seqincrement, s.seqcycle,
         has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable,
         col.column_ref, col.column_type
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN LATERAL (
    SELECT d.refobjid::regclass::text || '.' || quote_ident(a.attname) AS column_ref,
           format_type(a.atttypid, NULL) AS column_type
    FROM pg_depend d
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    LIMIT 1
  ) col ON true
  WHERE NOT pg_is_other_temp_schema(n.oid)
),
measured AS (
  SELECT seq.*,
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
  FROM seq
),
ranked AS (
  SELECT measured.*,
         CASE WHEN last_value IS NULL OR seqcycle THEN NULL
              WHEN seqincrement > 0 THEN
                (last_value::numeric - seqmin) / nullif(limit_value::numeric - seqmin, 0)
              ELSE (seqmax::numeric - last_value) / nullif(seqmax::numeric - limit_value, 0)
         END AS used_ratio
  FROM measured
),
numbered AS (
  SELECT ranked.*,
         row_number() OVER (PARTITION BY readable
                            ORDER BY used_ratio DESC NULLS LAST, schema, name) AS rank,
         count(*) FILTER (WHERE readable) OVER () AS readable_total,
         count(*) FILTER (WHERE NOT readable) OVER () AS unreadable_total
  FROM ranked
)
SELECT schema, name, data_type, column_ref AS column, column_type,
       seqincrement AS increment_by, seqcycle AS cycle, last_value, limit_value, readable,
       used_ratio::float AS used_ratio, readable_total::int, unreadable_total::int,
       'GRANT SELECT ON SEQUENCE ' || quote_ident(schema) || '.' || quote_ident(name)
           || ' TO ' || quote_ident(current_user) || ';' AS grant_statement
FROM numbered
WHERE rank <= %(limit)s
ORDER BY readable DESC, used_ratio DESC NULLS LAST, schema, name
""",
    SequenceUsage,
)


def sequences(alias: str, *, limit: int = 20) -> Result[SequenceUsage]:
    """The most used readable sequences, and up to ``limit`` unreadable ones."""
    return run(alias, SEQUENCES, {"limit": limit})
