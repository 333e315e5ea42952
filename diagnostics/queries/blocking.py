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
    waiting_for_row: bool  # a row lock (transactionid/tuple): the relation is the row's table
    holds: str | None  # the relation locks it holds, "RowExclusiveLock on core.projects, ..."
    waiting_seconds: float | None
    xact_seconds: float | None
    is_self: bool


# The relation of every lock: a relation, page or tuple lock names it; a transactionid
# lock (waiting for another transaction's row lock) does not, so the row's table is found
# from the waiter's own tuple lock (taken by the second and later waiters on a row), else
# from the tables both the waiter and its blockers hold row-level table locks on.
_BLOCKING = """
WITH db AS (SELECT oid FROM pg_database WHERE datname = current_database()),
waiting AS MATERIALIZED (
  SELECT DISTINCT ON (l.pid) l.pid, l.mode, l.locktype, l.relation AS relid, l.database,
         {waitstart} AS waitstart
  FROM pg_locks l
  JOIN pg_stat_activity a ON a.pid = l.pid AND a.datname = current_database()
  WHERE NOT l.granted
  ORDER BY l.pid
), edges AS MATERIALIZED (
  SELECT w.pid, pg_blocking_pids(w.pid) AS blocked_by FROM waiting w
), named AS (
  SELECT w.*, e.blocked_by,
         coalesce(
           CASE WHEN w.database = (SELECT oid FROM db) THEN w.relid::regclass::text END,
           (SELECT t.relation::regclass::text FROM pg_locks t
            WHERE t.pid = w.pid AND t.locktype = 'tuple' AND t.database = (SELECT oid FROM db)
            LIMIT 1),
           CASE WHEN w.locktype IN ('transactionid', 'virtualxid') THEN
             (SELECT string_agg(DISTINCT r.relation::regclass::text, ', ')
              FROM pg_locks r
              JOIN pg_class c ON c.oid = r.relation AND c.relkind IN ('r', 'p', 'm')
              JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname NOT LIKE 'pg\\_%%'
              JOIN pg_locks h ON h.locktype = 'relation' AND h.granted
                             AND h.database = r.database AND h.relation = r.relation
                             AND h.pid = ANY (e.blocked_by)
                             AND h.mode IN ('RowExclusiveLock', 'RowShareLock')
              WHERE r.pid = w.pid AND r.locktype = 'relation' AND r.granted
                AND r.database = (SELECT oid FROM db)
                AND r.mode IN ('RowExclusiveLock', 'RowShareLock'))
           END
         ) AS relation
  FROM waiting w JOIN edges e ON e.pid = w.pid
), involved AS (
  SELECT pid FROM edges WHERE cardinality(blocked_by) > 0
  UNION
  SELECT unnest(blocked_by) FROM edges
), held AS (
  SELECT l.pid, string_agg(l.mode || ' on ' || l.relation::regclass::text, ', '
                           ORDER BY l.relation::regclass::text, l.mode) AS holds
  FROM pg_locks l
  JOIN pg_class c ON c.oid = l.relation AND c.relkind IN ('r', 'p', 'm')
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname NOT LIKE 'pg\\_%%'
  WHERE l.locktype = 'relation' AND l.granted AND l.database = (SELECT oid FROM db)
    AND l.pid IN (SELECT pid FROM involved)
  GROUP BY l.pid
)
SELECT a.pid, a.datname AS database, a.usename AS role, a.application_name, a.state,
       a.backend_start, a.xact_start, a.query_start, a.state_change, a.wait_event_type,
       a.wait_event, left(a.query, %(query_chars)s) AS query,
       coalesce(w.blocked_by, '{{}}'::int[]) AS blocked_by,
       w.mode AS waiting_for_mode, w.locktype AS waiting_for_locktype,
       w.relation AS waiting_for_relation,
       coalesce(w.locktype IN ('transactionid', 'tuple'), false) AS waiting_for_row,
       h.holds,
       extract(epoch FROM clock_timestamp() - coalesce(w.waitstart, a.state_change))::float
           AS waiting_seconds,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float AS xact_seconds,
       a.pid = pg_backend_pid() AS is_self
FROM involved i
JOIN pg_stat_activity a ON a.pid = i.pid
LEFT JOIN named w ON w.pid = a.pid AND cardinality(w.blocked_by) > 0
LEFT JOIN held h ON h.pid = a.pid
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
