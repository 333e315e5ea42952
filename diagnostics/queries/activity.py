"""Sessions of the connected database (``pg_stat_activity``) and signalling them.

Only client backends (``backend_type = 'client backend'``): background workers must
never look killable. Without ``pg_read_all_stats`` other roles' ``state``, ``query``,
``client_addr``, wait columns and even ``backend_type`` come back NULL (or
``<insufficient privilege>``), so a NULL backend_type is kept: those rows still show,
and the server decides whether they may be signalled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from diagnostics.runner import Query, Result, run

HIDDEN = "<insufficient privilege>"


@dataclass(frozen=True)
class Session:
    pid: int
    database: str | None
    role: str | None
    application_name: str | None
    client_addr: str | None
    backend_start: dt.datetime | None
    xact_start: dt.datetime | None
    query_start: dt.datetime | None
    state_change: dt.datetime | None
    state: str | None
    wait_event_type: str | None
    wait_event: str | None
    query: str | None
    query_seconds: float | None
    xact_seconds: float | None
    state_seconds: float | None
    is_self: bool
    is_portal: bool
    blocked_by: list[int] | None  # the sessions it waits for, when waiting for a lock

    @property
    def hidden(self) -> bool:
        """True when the server hides this session's details from the current role."""
        return self.state is None or self.query == HIDDEN

    @property
    def idle_in_transaction(self) -> bool:
        return bool(self.state and self.state.startswith("idle in transaction"))


_SESSION_COLUMNS = """
       a.pid, a.datname AS database, a.usename AS role, a.application_name,
       host(a.client_addr) AS client_addr, a.backend_start, a.xact_start, a.query_start,
       a.state_change, a.state, a.wait_event_type, a.wait_event,
       left(a.query, %(query_chars)s) AS query,
       extract(epoch FROM clock_timestamp() - a.query_start)::float AS query_seconds,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float AS xact_seconds,
       extract(epoch FROM clock_timestamp() - a.state_change)::float AS state_seconds,
       a.pid = pg_backend_pid() AS is_self,
       coalesce(a.application_name = %(portal_app)s, false) AS is_portal,
       CASE WHEN a.pid IN (SELECT w.pid FROM pg_locks w WHERE NOT w.granted)
            THEN pg_blocking_pids(a.pid) END AS blocked_by
"""

# Filters are parameters that may be NULL ("no filter"). "Long-running" means an
# active query or an open transaction older than the threshold.
SESSIONS = Query(
    "sessions",
    "\nSELECT"
    + _SESSION_COLUMNS
    + """
FROM pg_stat_activity a
WHERE (a.backend_type = 'client backend' OR a.backend_type IS NULL)
  AND a.datname = current_database()
  AND (%(state)s::text IS NULL OR a.state = %(state)s::text)
  AND (NOT %(idle_in_transaction)s OR a.state LIKE 'idle in transaction%%')
  AND (%(min_seconds)s::float IS NULL
       OR (a.state = 'active'
           AND a.query_start < clock_timestamp() - make_interval(secs => %(min_seconds)s::float))
       OR (a.state LIKE 'idle in transaction%%'
           AND a.xact_start < clock_timestamp() - make_interval(secs => %(min_seconds)s::float)))
ORDER BY a.state = 'active' DESC, coalesce(a.xact_start, a.query_start, a.backend_start)
LIMIT %(limit)s
""",
    Session,
)


def sessions(
    alias: str,
    *,
    portal_app: str,
    state: str | None = None,
    idle_in_transaction: bool = False,
    min_seconds: float | None = None,
    query_chars: int = 2000,
    limit: int = 500,
) -> Result[Session]:
    return run(
        alias,
        SESSIONS,
        {
            "portal_app": portal_app,
            "state": state,
            "idle_in_transaction": idle_in_transaction,
            "min_seconds": min_seconds,
            "query_chars": query_chars,
            "limit": limit,
        },
    )


# One session, for the confirmation page: matched on pid AND backend_start, so a PID
# reused by a newer session is never mistaken for the one the admin saw.
SESSION = Query(
    "session",
    "\nSELECT"
    + _SESSION_COLUMNS
    + """
FROM pg_stat_activity a
WHERE a.pid = %(pid)s AND a.backend_start = %(backend_start)s
  AND (a.backend_type = 'client backend' OR a.backend_type IS NULL)
  AND a.datname = current_database()
""",
    Session,
)


def session(
    alias: str, *, pid: int, backend_start: dt.datetime, portal_app: str
) -> Result[Session]:
    return run(
        alias,
        SESSION,
        {
            "pid": pid,
            "backend_start": backend_start,
            "portal_app": portal_app,
            "query_chars": 10000,
        },
    )


IDLE_SESSIONS = Query(
    "idle_sessions",
    "\nSELECT"
    + _SESSION_COLUMNS
    + """
FROM pg_stat_activity a
WHERE (a.backend_type = 'client backend' OR a.backend_type IS NULL)
  AND a.datname = current_database()
  AND a.state = 'idle'
  AND a.state_change < clock_timestamp() - make_interval(mins => %(minutes)s)
  AND a.pid <> pg_backend_pid()
  AND (%(include_portal)s OR a.application_name IS DISTINCT FROM %(portal_app)s)
ORDER BY a.state_change
""",
    Session,
)


def idle_sessions(
    alias: str, *, minutes: int, include_portal: bool, portal_app: str
) -> Result[Session]:
    return run(
        alias,
        IDLE_SESSIONS,
        {
            "minutes": minutes,
            "include_portal": include_portal,
            "portal_app": portal_app,
            "query_chars": 2000,
        },
    )


@dataclass(frozen=True)
class SignalResult:
    found: bool
    signalled: bool


# The guard and the signal are one statement: the function is only called for the
# row whose pid AND backend_start still match, in this database.
CANCEL = Query(
    "cancel_backend",
    """
SELECT count(s.pid) > 0 AS found, coalesce(bool_or(s.signalled), false) AS signalled
FROM (SELECT a.pid, pg_cancel_backend(a.pid) AS signalled
      FROM pg_stat_activity a
      WHERE a.pid = %(pid)s AND a.backend_start = %(backend_start)s
        AND (a.backend_type = 'client backend' OR a.backend_type IS NULL)
        AND a.datname = current_database()
        AND a.pid <> pg_backend_pid()) s
""",
    SignalResult,
)

TERMINATE = Query(
    "terminate_backend",
    """
SELECT count(s.pid) > 0 AS found, coalesce(bool_or(s.signalled), false) AS signalled
FROM (SELECT a.pid, pg_terminate_backend(a.pid) AS signalled
      FROM pg_stat_activity a
      WHERE a.pid = %(pid)s AND a.backend_start = %(backend_start)s
        AND (a.backend_type = 'client backend' OR a.backend_type IS NULL)
        AND a.datname = current_database()
        AND a.pid <> pg_backend_pid()) s
""",
    SignalResult,
)


def signal(alias: str, *, kind: str, pid: int, backend_start: dt.datetime) -> Result[SignalResult]:
    query = {"cancel": CANCEL, "terminate": TERMINATE}[kind]
    return run(alias, query, {"pid": pid, "backend_start": backend_start})


# The bulk "terminate idle connections" action re-checks, in the same statement, that
# the session is still the one listed (pid AND backend_start) and still idle for long.
TERMINATE_IF_IDLE = Query(
    "terminate_if_idle",
    """
SELECT count(s.pid) > 0 AS found, coalesce(bool_or(s.signalled), false) AS signalled
FROM (SELECT a.pid, pg_terminate_backend(a.pid) AS signalled
      FROM pg_stat_activity a
      WHERE a.pid = %(pid)s AND a.backend_start = %(backend_start)s
        AND (a.backend_type = 'client backend' OR a.backend_type IS NULL)
        AND a.datname = current_database()
        AND a.pid <> pg_backend_pid()
        AND a.state = 'idle'
        AND a.state_change < clock_timestamp() - make_interval(mins => %(minutes)s)) s
""",
    SignalResult,
)


def terminate_if_idle(
    alias: str, *, pid: int, backend_start: dt.datetime, minutes: int
) -> Result[SignalResult]:
    return run(
        alias, TERMINATE_IF_IDLE, {"pid": pid, "backend_start": backend_start, "minutes": minutes}
    )


@dataclass(frozen=True)
class Visibility:
    hidden: bool


# Without pg_read_all_stats another role's session shows no backend_start, so it cannot
# be told apart from a newer session that reused its pid: such sessions are never
# signalled, and the page says why.
PID_HIDDEN = Query(
    "pid_hidden",
    """
SELECT a.backend_start IS NULL AS hidden
FROM pg_stat_activity a
WHERE a.pid = %(pid)s AND a.datname = current_database()
""",
    Visibility,
)


def pid_hidden(alias: str, *, pid: int) -> bool:
    row = run(alias, PID_HIDDEN, {"pid": pid}).first()
    return bool(row and row.hidden)


# Sessions whose current query has run longer than N seconds (the bulk cancel/terminate).
LONG_SESSIONS = Query(
    "long_sessions",
    "\nSELECT"
    + _SESSION_COLUMNS
    + """
FROM pg_stat_activity a
WHERE (a.backend_type = 'client backend' OR a.backend_type IS NULL)
  AND a.datname = current_database()
  AND a.state = 'active'
  AND a.query_start < clock_timestamp() - make_interval(secs => %(seconds)s)
  AND a.pid <> pg_backend_pid()
  AND (%(include_portal)s OR a.application_name IS DISTINCT FROM %(portal_app)s)
ORDER BY a.query_start
""",
    Session,
)


def long_sessions(
    alias: str, *, seconds: int, include_portal: bool, portal_app: str
) -> Result[Session]:
    return run(
        alias,
        LONG_SESSIONS,
        {
            "seconds": seconds,
            "include_portal": include_portal,
            "portal_app": portal_app,
            "query_chars": 2000,
        },
    )


# The bulk action re-checks, in the same statement as the signal, that the session is
# still the one listed (pid AND backend_start) and still running a query started over
# N seconds ago: a session that has moved on to a new query is left alone.
_SIGNAL_IF_LONG = """
SELECT count(s.pid) > 0 AS found, coalesce(bool_or(s.signalled), false) AS signalled
FROM (SELECT a.pid, {function}(a.pid) AS signalled
      FROM pg_stat_activity a
      WHERE a.pid = %(pid)s AND a.backend_start = %(backend_start)s
        AND (a.backend_type = 'client backend' OR a.backend_type IS NULL)
        AND a.datname = current_database()
        AND a.pid <> pg_backend_pid()
        AND a.state = 'active'
        AND a.query_start < clock_timestamp() - make_interval(secs => %(seconds)s)) s
"""
CANCEL_IF_LONG = Query(
    "cancel_if_long", _SIGNAL_IF_LONG.replace("{function}", "pg_cancel_backend"), SignalResult
)
TERMINATE_IF_LONG = Query(
    "terminate_if_long",
    _SIGNAL_IF_LONG.replace("{function}", "pg_terminate_backend"),
    SignalResult,
)


def signal_if_long(
    alias: str, *, kind: str, pid: int, backend_start: dt.datetime, seconds: int
) -> Result[SignalResult]:
    query = {"cancel": CANCEL_IF_LONG, "terminate": TERMINATE_IF_LONG}[kind]
    return run(alias, query, {"pid": pid, "backend_start": backend_start, "seconds": seconds})
