"""Facts about the server and the connected role that every page needs.

One round trip: version, database, role and its monitoring privileges, whether
pg_stat_statements is installed in this database (and in which schema), and the
settings that decide what the other pages can show.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from diagnostics.runner import Query, Result, run


@dataclass(frozen=True)
class ServerInfo:
    version_num: int
    version: str
    database: str
    database_oid: int
    role: str
    is_superuser: bool
    in_recovery: bool
    started_at: dt.datetime
    now: dt.datetime
    backend_pid: int
    has_pg_monitor: bool
    has_read_all_stats: bool
    has_signal_backend: bool
    has_read_all_settings: bool
    pgss_version: str | None
    pgss_schema: str | None
    max_connections: int
    track_io_timing: str
    track_activity_query_size: int
    autovacuum_freeze_max_age: int
    block_size: int

    @property
    def major(self) -> int:
        return self.version_num // 10000

    @property
    def uptime(self) -> dt.timedelta:
        return self.now - self.started_at

    @property
    def pgss_version_tuple(self) -> tuple[int, ...]:
        if not self.pgss_version:
            return ()
        return tuple(int(p) for p in self.pgss_version.split(".") if p.isdigit())


# pg_has_role(..., 'USAGE') is what the server checks before showing other roles'
# activity or signalling (privileges inherited), and it is true for superusers.
SERVER_INFO = Query(
    "server_info",
    """
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       current_database() AS database,
       (SELECT oid FROM pg_database WHERE datname = current_database())::bigint
           AS database_oid,
       current_user AS role,
       coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)
           AS is_superuser,
       pg_is_in_recovery() AS in_recovery,
       pg_postmaster_start_time() AS started_at,
       clock_timestamp() AS now,
       pg_backend_pid() AS backend_pid,
       pg_has_role(current_user, 'pg_monitor', 'USAGE') AS has_pg_monitor,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS has_read_all_stats,
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS has_signal_backend,
       pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') AS has_read_all_settings,
       e.extversion AS pgss_version,
       (SELECT nspname FROM pg_namespace WHERE oid = e.extnamespace)::text AS pgss_schema,
       current_setting('max_connections')::int AS max_connections,
       current_setting('track_io_timing') AS track_io_timing,
       (SELECT setting::int FROM pg_settings WHERE name = 'track_activity_query_size')
           AS track_activity_query_size,
       current_setting('autovacuum_freeze_max_age')::int AS autovacuum_freeze_max_age,
       current_setting('block_size')::int AS block_size
FROM (SELECT 1) AS one
LEFT JOIN pg_extension e ON e.extname = 'pg_stat_statements'
""",
    ServerInfo,
)


def server_info(alias: str) -> Result[ServerInfo]:
    return run(alias, SERVER_INFO)
