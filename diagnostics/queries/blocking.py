"""Who blocks whom: waiting sessions of this database and the sessions ahead of them.

Waiters are found in ``pg_locks`` (readable by every role) rather than through
``wait_event_type``, which is hidden for other roles without pg_read_all_stats;
``pg_blocking_pids()`` then names the sessions each waiter queues behind. Blockers
may sit in another database (shared catalogs), so they are not filtered by database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import sql

from diagnostics.runner import Query, Result, run


@dataclass(frozen=True)
class LockSession:
    pid: int
    database: str | None
    role: str | None
    application_name: str | None
    state: str | None
    backend_start: dt.datetime | None
    xact_start: dt.datetime | None
    query_start: dt.datetime | None
    state_change: dt.datetime | None
    wait_event_type: str | None
    wait_event: str | None
    query: str | None
    blocked_by: list[int]
    waiting_for_mode: str | None
    waiting_for_locktype: str | None
    waiting_for_relation: str | None
    waiting_seconds: float | None
    xact_seconds: float | None
    is_self: bool


_BLOCKING = """
WITH waiting AS MATERIALIZED (
  SELECT DISTINCT ON (l.pid) l.pid, l.mode, l.locktype,
         CASE WHEN l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              THEN l.relation::regclass::text END AS relation,
         {waitstart} AS waitstart
  FROM pg_locks l
  JOIN pg_stat_activity a ON a.pid = l.pid AND a.datname = current_database()
  WHERE NOT l.granted
  ORDER BY l.pid
), edges AS MATERIALIZED (
  SELECT w.pid, pg_blocking_pids(w.pid) AS blocked_by FROM waiting w
), involved AS (
  SELECT pid FROM edges WHERE cardinality(blocked_by) > 0
  UNION
  SELECT unnest(blocked_by) FROM edges
)
SELECT a.pid, a.datname AS database, a.usename AS role, a.application_name, a.state,
       a.backend_start, a.xact_start, a.query_start, a.state_change, a.wait_event_type,
       a.wait_event, left(a.query, %(query_chars)s) AS query,
       coalesce(e.blocked_by, '{{}}'::int[]) AS blocked_by,
       w.mode AS waiting_for_mode, w.locktype AS waiting_for_locktype,
       w.relation AS waiting_for_relation,
       extract(epoch FROM clock_timestamp() - coalesce(w.waitstart, a.state_change))::float
           AS waiting_seconds,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float AS xact_seconds,
       a.pid = pg_backend_pid() AS is_self
FROM involved i
JOIN pg_stat_activity a ON a.pid = i.pid
LEFT JOIN edges e ON e.pid = a.pid AND cardinality(e.blocked_by) > 0
LEFT JOIN waiting w ON w.pid = a.pid AND e.pid IS NOT NULL
ORDER BY a.xact_start NULLS LAST, a.pid
"""

# pg_locks.waitstart exists from PostgreSQL 14.
BLOCKING_V14 = Query(
    "blocking_v14",
    sql.SQL(_BLOCKING).format(waitstart=sql.SQL("l.waitstart")),
    LockSession,
)
BLOCKING_V13 = Query(
    "blocking_v13",
    sql.SQL(_BLOCKING).format(waitstart=sql.SQL("NULL::timestamptz")),
    LockSession,
)


def blocking(alias: str, *, server_major: int, query_chars: int = 2000) -> Result[LockSession]:
    query = BLOCKING_V14 if server_major >= 14 else BLOCKING_V13
    return run(alias, query, {"query_chars": query_chars})
