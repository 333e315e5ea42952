"""Top statements from pg_stat_statements, with columns chosen by extension version.

The extension's columns follow the *extension* version (``pg_extension.extversion``),
not the server's: 1.8 replaced ``total_time`` by ``total_exec_time`` +
``total_plan_time``, 1.9 added ``toplevel`` and ``pg_stat_statements_info``, 1.10
added temp I/O timings, 1.11 renamed ``blk_read_time`` to ``shared_blk_read_time``
and added ``stats_since``. The view lives in the schema the extension was created
in, which is quoted with ``psycopg.sql.Identifier``.

Rows are always limited to the connected database (``dbid``): the extension counts
every database of the server.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import sql

from diagnostics.runner import MARKER, Query, Result, run

# Containment, not prefix: the text pg_stat_statements keeps may start after a comment.
MARKER_LIKE = "%" + MARKER.replace("%", r"\%").replace("_", r"\_") + "%"


@dataclass(frozen=True)
class Statement:
    queryid: int | None
    role: str | None
    query: str
    calls: int
    total_exec_ms: float
    total_plan_ms: float
    total_ms: float
    mean_ms: float | None
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    temp_blks_written: int
    io_read_ms: float | None
    io_write_ms: float | None
    io_ms: float | None
    toplevel: bool | None
    stats_since: dt.datetime | None
    share: float | None
    entries_total: int
    hidden_total: int

    @property
    def hidden(self) -> bool:
        return self.query == "<insufficient privilege>"

    @property
    def cache_hit_ratio(self) -> float | None:
        total = self.shared_blks_hit + self.shared_blks_read
        return self.shared_blks_hit / total if total else None


@dataclass(frozen=True)
class Columns:
    """SQL expressions for one band of extension versions."""

    exec_time: str
    plan_time: str
    read_time: str
    write_time: str
    toplevel: str
    stats_since: str


def columns_for(version: tuple[int, ...]) -> Columns:
    if version >= (1, 11):
        return Columns(
            "s.total_exec_time",
            "s.total_plan_time",
            "s.shared_blk_read_time + s.local_blk_read_time + s.temp_blk_read_time",
            "s.shared_blk_write_time + s.local_blk_write_time + s.temp_blk_write_time",
            "s.toplevel",
            "s.stats_since",
        )
    if version >= (1, 10):
        return Columns(
            "s.total_exec_time",
            "s.total_plan_time",
            "s.blk_read_time + s.temp_blk_read_time",
            "s.blk_write_time + s.temp_blk_write_time",
            "s.toplevel",
            "NULL::timestamptz",
        )
    if version >= (1, 8):
        return Columns(
            "s.total_exec_time",
            "s.total_plan_time",
            "s.blk_read_time",
            "s.blk_write_time",
            "s.toplevel" if version >= (1, 9) else "NULL::boolean",
            "NULL::timestamptz",
        )
    return Columns(
        "s.total_time",
        "0::float8",
        "s.blk_read_time",
        "s.blk_write_time",
        "NULL::boolean",
        "NULL::timestamptz",
    )


# Sort keys offered on the page; anything else falls back to total time.
ORDERS = {
    "total": sql.SQL("total_ms DESC"),
    "mean": sql.SQL("mean_ms DESC NULLS LAST"),
    "calls": sql.SQL("calls DESC"),
    "rows": sql.SQL("rows DESC"),
    "io": sql.SQL("io_ms DESC NULLS LAST, shared_blks_read DESC"),
}

TOP_STATEMENTS = """
SELECT s.queryid, r.rolname AS role, left(s.query, %(query_chars)s) AS query, s.calls,
       {exec_time} AS total_exec_ms, {plan_time} AS total_plan_ms,
       {exec_time} + {plan_time} AS total_ms,
       ({exec_time} + {plan_time}) / nullif(s.calls, 0) AS mean_ms,
       s.rows, s.shared_blks_hit, s.shared_blks_read, s.temp_blks_written,
       {read_time} AS io_read_ms, {write_time} AS io_write_ms,
       {read_time} + {write_time} AS io_ms,
       {toplevel} AS toplevel, {stats_since} AS stats_since,
       ({exec_time} + {plan_time})
           / nullif(sum({exec_time} + {plan_time}) OVER (), 0) AS share,
       (count(*) OVER ())::int AS entries_total,
       (count(*) FILTER (WHERE s.query = '<insufficient privilege>') OVER ())::int
           AS hidden_total
FROM {view} s
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (%(include_portal)s OR s.query NOT LIKE %(marker_like)s)
  AND (%(search)s::text IS NULL OR s.query ILIKE %(search)s::text)
  AND (%(queryid)s::bigint IS NULL OR s.queryid = %(queryid)s::bigint)
ORDER BY {order}
LIMIT %(limit)s
"""


def _compose(template: str, schema: str, version: tuple[int, ...], **extra: sql.Composable):
    cols = columns_for(version)
    return sql.SQL(template).format(
        view=sql.Identifier(schema, "pg_stat_statements"),
        exec_time=sql.SQL(cols.exec_time),
        plan_time=sql.SQL(cols.plan_time),
        read_time=sql.SQL(cols.read_time),
        write_time=sql.SQL(cols.write_time),
        toplevel=sql.SQL(cols.toplevel),
        stats_since=sql.SQL(cols.stats_since),
        **extra,
    )


def top_statements(
    alias: str,
    *,
    schema: str,
    version: tuple[int, ...],
    order: str = "total",
    include_portal: bool = False,
    search: str | None = None,
    limit: int = 50,
    query_chars: int = 2000,
    queryid: int | None = None,
) -> Result[Statement]:
    """The top ``limit`` statements of this database; ``search`` keeps those whose text
    contains it (case-insensitive)."""
    pattern = None
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
    query = Query(
        f"top_statements_{order}",
        _compose(TOP_STATEMENTS, schema, version, order=ORDERS.get(order, ORDERS["total"])),
        Statement,
    )
    return run(
        alias,
        query,
        {
            "query_chars": query_chars,
            "include_portal": include_portal,
            "marker_like": MARKER_LIKE,
            "search": pattern,
            "limit": limit,
            "queryid": queryid,
        },
    )


@dataclass(frozen=True)
class StatementsInfo:
    dealloc: int
    stats_reset: dt.datetime | None


STATEMENTS_INFO = "SELECT dealloc, stats_reset FROM {view}"


def statements_info(alias: str, *, schema: str) -> Result[StatementsInfo]:
    """pg_stat_statements_info (extension 1.9+): when all statistics were last reset."""
    query = Query(
        "statements_info",
        sql.SQL(STATEMENTS_INFO).format(view=sql.Identifier(schema, "pg_stat_statements_info")),
        StatementsInfo,
    )
    return run(alias, query)


@dataclass(frozen=True)
class StatementTotals:
    queryid: int
    role: str | None
    query: str
    calls: int
    total_exec_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    stats_since: dt.datetime | None


# Cumulative counters per (queryid, role) of this database, for snapshot deltas.
# Nested and top-level executions of one statement are added together.
STATEMENT_TOTALS = """
SELECT s.queryid, r.rolname AS role, min(left(s.query, %(query_chars)s)) AS query,
       sum(s.calls)::bigint AS calls, sum({exec_time})::float8 AS total_exec_ms,
       sum(s.rows)::bigint AS rows, sum(s.shared_blks_hit)::bigint AS shared_blks_hit,
       sum(s.shared_blks_read)::bigint AS shared_blks_read,
       min({stats_since}) AS stats_since
FROM {view} s
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.queryid IS NOT NULL
  AND s.query NOT LIKE %(marker_like)s
GROUP BY s.queryid, r.rolname
"""


def statement_totals(
    alias: str, *, schema: str, version: tuple[int, ...], query_chars: int = 10000
) -> Result[StatementTotals]:
    query = Query(
        "statement_totals",
        _compose(STATEMENT_TOTALS, schema, version),
        StatementTotals,
        timeout_ms=30_000,
    )
    return run(alias, query, {"query_chars": query_chars, "marker_like": MARKER_LIKE})


@dataclass(frozen=True)
class Readable:
    readable: bool


# Runs the extension's function (not just the view definition): fails with
# "must be loaded via shared_preload_libraries" when the library is not preloaded.
PROBE = "SELECT count(*) >= 0 AS readable FROM (SELECT 1 FROM {view} LIMIT 1) AS one"


def probe(alias: str, *, schema: str) -> Result[Readable]:
    query = Query(
        "statements_probe",
        sql.SQL(PROBE).format(view=sql.Identifier(schema, "pg_stat_statements")),
        Readable,
    )
    return run(alias, query)


@dataclass(frozen=True)
class ResetDone:
    done: bool


# Resets the statistics of this database only (userid 0 and queryid 0 mean "all"):
# the other databases on the server, and other tools reading them, keep theirs.
RESET = """
SELECT true AS done
FROM (SELECT {function}(0::oid,
                        (SELECT oid FROM pg_database WHERE datname = current_database()),
                        0::bigint)) AS reset
"""


def reset(alias: str, *, schema: str) -> Result[ResetDone]:
    query = Query(
        "statements_reset",
        sql.SQL(RESET).format(function=sql.Identifier(schema, "pg_stat_statements_reset")),
        ResetDone,
    )
    return run(alias, query)
