"""Overview numbers: database statistics, size and connections.

Everything here is scoped to the connected database (``current_database()``),
except the connection count against ``max_connections``, which is server-wide by
nature and is broken down by database so two databases never mix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import sql

from diagnostics.queries.indexes import build_conditions
from diagnostics.runner import Query, Result, run


@dataclass(frozen=True)
class DatabaseStats:
    database: str
    xact_commit: int
    xact_rollback: int
    blks_read: int
    blks_hit: int
    deadlocks: int
    temp_files: int
    temp_bytes: int
    conflicts: int
    stats_reset: dt.datetime | None
    sampled_at: dt.datetime

    @property
    def transactions(self) -> int:
        return self.xact_commit + self.xact_rollback

    @property
    def cache_hit_ratio(self) -> float | None:
        total = self.blks_hit + self.blks_read
        return self.blks_hit / total if total else None


DATABASE_STATS = Query(
    "database_stats",
    """
SELECT datname AS database, xact_commit, xact_rollback, blks_read, blks_hit, deadlocks,
       temp_files, temp_bytes, conflicts, stats_reset, clock_timestamp() AS sampled_at
FROM pg_stat_database
WHERE datname = current_database()
""",
    DatabaseStats,
)


def database_stats(alias: str) -> Result[DatabaseStats]:
    return run(alias, DATABASE_STATS)


@dataclass(frozen=True)
class DatabaseSize:
    database: str
    bytes: int


DATABASE_SIZE = Query(
    "database_size",
    "SELECT current_database() AS database, pg_database_size(current_database()) AS bytes",
    DatabaseSize,
)


def database_size(alias: str) -> Result[DatabaseSize]:
    return run(alias, DATABASE_SIZE)


@dataclass(frozen=True)
class ConnectionCount:
    database: str | None
    state: str | None
    count: int


# All client backends of the server, by database and state: max_connections is a
# server-wide limit. ``state`` is NULL for other roles' sessions without
# pg_read_all_stats.
CONNECTIONS = Query(
    "connections",
    """
SELECT datname AS database, state, count(*)::int AS count
FROM pg_stat_activity
WHERE (backend_type = 'client backend' OR backend_type IS NULL)
GROUP BY datname, state
ORDER BY datname, state
""",
    ConnectionCount,
)


def connections_by_state(alias: str) -> Result[ConnectionCount]:
    return run(alias, CONNECTIONS)


@dataclass(frozen=True)
class Attention:
    long_running: int
    idle_in_transaction: int
    waiting_on_locks: int
    invalid_indexes: int
    indexes_being_built: int
    indexes_possibly_being_built: int
    dead_tuple_tables: int
    oldest_xid_age: int
    oldest_table_xid_age: int


_BUILDING, _POSSIBLY = build_conditions("i.indexrelid", "i.indrelid")
ATTENTION = Query(
    "attention",
    sql.SQL(
        """
SELECT
  (SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database()
      AND (backend_type = 'client backend' OR backend_type IS NULL)
      AND state = 'active' AND pid <> pg_backend_pid()
      AND query_start < clock_timestamp() - make_interval(secs => %(long_seconds)s))::int
    AS long_running,
  (SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database()
      AND (backend_type = 'client backend' OR backend_type IS NULL)
      AND state LIKE 'idle in transaction%%'
      AND state_change < clock_timestamp() - make_interval(secs => %(idle_seconds)s))::int
    AS idle_in_transaction,
  (SELECT count(DISTINCT l.pid) FROM pg_locks l
    WHERE NOT l.granted
      AND l.pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database()))::int
    AS waiting_on_locks,
  (SELECT count(*) FROM pg_index i
    WHERE NOT i.indisvalid AND NOT {being_built} AND NOT {possibly})::int AS invalid_indexes,
  (SELECT count(*) FROM pg_index i WHERE NOT i.indisvalid AND {being_built})::int
    AS indexes_being_built,
  (SELECT count(*) FROM pg_index i WHERE NOT i.indisvalid AND {possibly})::int
    AS indexes_possibly_being_built,
  (SELECT count(*) FROM pg_stat_user_tables
    WHERE n_dead_tup > %(dead_min)s AND n_dead_tup > %(dead_ratio)s * greatest(n_live_tup, 1))::int
    AS dead_tuple_tables,
  (SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database())::bigint
    AS oldest_xid_age,
  (SELECT coalesce(max(age(relfrozenxid)), 0) FROM pg_class
    WHERE relkind IN ('r', 'm', 't') AND relfrozenxid <> '0'::xid)::bigint
    AS oldest_table_xid_age
"""
    ).format(being_built=_BUILDING, possibly=_POSSIBLY),
    Attention,
)


def attention(
    alias: str,
    *,
    long_seconds: float,
    idle_seconds: float,
    dead_min: int = 10_000,
    dead_ratio: float = 0.2,
) -> Result[Attention]:
    return run(
        alias,
        ATTENTION,
        {
            "long_seconds": long_seconds,
            "idle_seconds": idle_seconds,
            "dead_min": dead_min,
            "dead_ratio": dead_ratio,
        },
    )
