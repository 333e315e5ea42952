"""Connections of the whole server broken down by database, role, application, client
address and SSL (``pg_stat_activity`` joined to ``pg_stat_ssl``).

Server-wide, like max_connections. Without pg_read_all_stats the server hides other
roles' application, client address and state (NULL): they are counted as "hidden".
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.runner import Query, Result, run


@dataclass(frozen=True)
class ConnectionGroup:
    database: str | None
    role: str | None
    application_name: str | None
    client_addr: str | None
    ssl: bool | None
    ssl_version: str | None
    state: str | None
    count: int


CONNECTION_GROUPS = Query(
    "connection_groups",
    """
SELECT a.datname AS database, a.usename AS role, a.application_name,
       coalesce(host(a.client_addr), CASE WHEN a.client_port = -1 THEN 'local socket' END)
           AS client_addr,
       s.ssl, s.version AS ssl_version, a.state, count(*)::int AS count
FROM pg_stat_activity a
LEFT JOIN pg_stat_ssl s ON s.pid = a.pid
WHERE a.backend_type = 'client backend'
   -- Hidden from this role: background processes have no database or no role.
   OR (a.backend_type IS NULL AND a.datname IS NOT NULL AND a.usesysid IS NOT NULL)
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY count(*) DESC
""",
    ConnectionGroup,
)


def connection_groups(alias: str) -> Result[ConnectionGroup]:
    return run(alias, CONNECTION_GROUPS)
