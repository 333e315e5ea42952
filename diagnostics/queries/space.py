"""Sizes of tables and indexes, grouped by the project's schemas.

Sizes come from ``pg_table_size``/``pg_indexes_size``/``pg_relation_size``, which take
an ACCESS SHARE lock on each relation. A relation held (or awaited) in ACCESS
EXCLUSIVE mode by another session would make the page wait, so such relations are
listed as "locked" without a size instead (``lock_timeout`` covers the race).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from diagnostics.runner import Query, Result, run

# The project's app schemas get a group each; everything else is "others".
SCHEMA_GROUPS = ["auth", "core", "analytics", "audit"]
# Up to this many tables every one is measured; beyond, totals come from page counts.
MEASURE_ALL_UP_TO = 500

_LOCKED = """
locked AS MATERIALIZED (
  SELECT DISTINCT l.relation FROM pg_locks l
  WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
    AND l.pid <> pg_backend_pid()
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)"""


@dataclass(frozen=True)
class TableSize:
    kind: str  # "table" or "schema" (a schema total)
    grp: str
    schema: str
    name: str | None
    relkind: str | None
    row_estimate: int | None
    table_bytes: int | None
    toast_bytes: int | None
    index_bytes: int | None
    total_bytes: int | None  # measured (tables shown); None for schema totals
    estimated_bytes: int | None  # measured on small catalogs, else from page counts
    measured: bool  # False: estimated_bytes comes from the catalog's page counts
    tables: int
    locked: bool


_TABLE_SIZES = """
WITH {locked},
rel AS MATERIALIZED (
  -- Catalog page counts (kept by VACUUM, ANALYZE and CREATE INDEX) rank the tables and
  -- sum up the schemas for free; opening thousands of relations to measure them is
  -- what makes such pages slow on large catalogs.
  SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind, c.reltuples,
         c.reltoastrelid,
         CASE WHEN n.nspname = ANY(%(groups)s) THEN n.nspname ELSE 'others' END AS grp,
         EXISTS (SELECT 1 FROM locked WHERE locked.relation = c.oid) AS locked,
         (c.relpages::bigint + coalesce(t.relpages, 0)
          + coalesce((SELECT sum(ic.relpages) FROM pg_index i
                      JOIN pg_class ic ON ic.oid = i.indexrelid
                      WHERE i.indrelid = c.oid), 0))::bigint
           * current_setting('block_size')::bigint AS catalog_bytes
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
  WHERE c.relkind IN ('r', 'm')
    AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
),
small AS (
  -- A small catalog is measured whole: cheap, and exact even before the first ANALYZE.
  SELECT count(*) <= %(measure_all_up_to)s AS measured FROM rel
),
sizes AS MATERIALIZED (
  SELECT rel.*, small.measured,
         CASE WHEN NOT small.measured THEN catalog_bytes
              WHEN NOT locked THEN pg_total_relation_size(oid) END AS estimated_bytes
  FROM rel CROSS JOIN small
),
ranked AS (
  SELECT sizes.*,
         row_number() OVER (PARTITION BY grp ORDER BY estimated_bytes DESC NULLS LAST, name)
             AS rank
  FROM sizes
)
-- The candidates are measured exactly (all forks, TOAST and indexes).
SELECT 'table' AS kind, grp, schema, name, relkind::text AS relkind,
       CASE WHEN reltuples >= 0 THEN reltuples::bigint END AS row_estimate,
       CASE WHEN NOT locked THEN pg_table_size(oid) END AS table_bytes,
       CASE WHEN locked THEN NULL WHEN reltoastrelid = 0 THEN 0
            ELSE pg_total_relation_size(reltoastrelid) END AS toast_bytes,
       CASE WHEN NOT locked THEN pg_indexes_size(oid) END AS index_bytes,
       CASE WHEN NOT locked THEN pg_total_relation_size(oid) END AS total_bytes,
       estimated_bytes, true AS measured, 1 AS tables, locked
FROM ranked
WHERE rank <= %(candidates)s OR locked
UNION ALL
SELECT 'schema', grp, schema, NULL, NULL, sum(greatest(reltuples, 0))::bigint,
       NULL, NULL, NULL, NULL, sum(estimated_bytes)::bigint, bool_and(measured),
       count(*)::int, bool_or(locked)
FROM sizes
GROUP BY grp, schema
ORDER BY kind, grp, total_bytes DESC NULLS LAST, estimated_bytes DESC
"""

TABLE_SIZES = Query(
    "table_sizes",
    sql.SQL(_TABLE_SIZES).format(locked=sql.SQL(_LOCKED)),
    TableSize,
)


def table_sizes(alias: str, *, per_group: int = 10) -> Result[TableSize]:
    """The ``per_group`` largest tables of each schema group, measured, and the schemas'
    estimated totals. Three times as many candidates as shown are measured, so a table
    whose catalog estimate is stale still ranks by its real size."""
    params = {
        "groups": SCHEMA_GROUPS,
        "candidates": per_group * 3,
        "measure_all_up_to": MEASURE_ALL_UP_TO,
    }
    result = run(alias, TABLE_SIZES, params)
    if not result.ok:
        return result
    kept: list[TableSize] = []
    counts: dict[str, int] = {}
    for row in result.rows:  # tables come sorted by measured size within each group
        if row.kind == "table" and not row.locked:
            if counts.get(row.grp, 0) >= per_group:
                continue
            counts[row.grp] = counts.get(row.grp, 0) + 1
        kept.append(row)
    return Result(rows=tuple(kept))


@dataclass(frozen=True)
class IndexSize:
    grp: str
    schema: str
    name: str
    table_name: str
    bytes: int | None
    locked: bool


# Ranked by the catalog's page count (free to read), then measured for the few shown:
# asking the file system for every index of a large catalog is the slow part.
_INDEX_SIZES = """
WITH {locked},
idx AS MATERIALIZED (
  SELECT c.oid, n.nspname AS schema, c.relname AS name, t.relname AS table_name,
         CASE WHEN n.nspname = ANY(%(groups)s) THEN n.nspname ELSE 'others' END AS grp,
         EXISTS (SELECT 1 FROM locked WHERE locked.relation IN (c.oid, t.oid)) AS locked,
         row_number() OVER (
           PARTITION BY CASE WHEN n.nspname = ANY(%(groups)s) THEN n.nspname ELSE 'others' END
           ORDER BY c.relpages DESC, c.relname) AS rank
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE t.relkind IN ('r', 'm')
    AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
)
SELECT grp, schema, name, table_name,
       CASE WHEN NOT locked THEN pg_relation_size(oid) END AS bytes, locked
FROM idx
WHERE rank <= %(candidates)s
ORDER BY grp, bytes DESC NULLS LAST, name
"""

INDEX_SIZES = Query(
    "index_sizes",
    sql.SQL(_INDEX_SIZES).format(locked=sql.SQL(_LOCKED)),
    IndexSize,
)


def index_sizes(alias: str, *, per_group: int = 10) -> Result[IndexSize]:
    """The largest indexes per schema group (a few extra candidates are measured)."""
    result = run(alias, INDEX_SIZES, {"groups": SCHEMA_GROUPS, "candidates": per_group * 3})
    if not result.ok:
        return result
    kept: list[IndexSize] = []
    counts: dict[str, int] = {}
    for row in result.rows:
        if counts.get(row.grp, 0) < per_group:
            kept.append(row)
            counts[row.grp] = counts.get(row.grp, 0) + 1
    return Result(rows=tuple(kept))
