"""Curated views for Metabase in the analytics schema (docs/metabase.md).

Plain views, computed when queried, owned by the role that runs migrations: Metabase's
role needs SELECT on a view only (a view reads its tables with its owner's privileges),
and the default privileges set by ``manage.py metabase_access`` give it that for every
view created here. So a view must never read ``auth`` or ``audit``, and exposes counts,
never emails, names or IP addresses.

Days are UTC calendar days, whatever the session's TimeZone. The COMMENTs are what
Metabase shows as table and column descriptions after a sync.

Django knows nothing of these views (no models), so ``makemigrations`` stays clean. A
later migration that alters a column a view reads must drop and re-create the view.
"""

from django.db import migrations

CREATE = (
    # -- executions, tokens and time by model, per day
    """
    CREATE VIEW analytics.daily_model_usage AS
    SELECT (e.created_at AT TIME ZONE 'UTC')::date AS day,
           s.model,
           count(*) AS executions,
           count(DISTINCT e.session_id) AS sessions,
           COALESCE(sum(e.tokens_used), 0)::bigint AS tokens_used,
           round(avg(e.execution_time_ms), 1) AS mean_execution_time_ms
    FROM core.execution_history AS e
    JOIN core.codex_sessions AS s ON s.session_id = e.session_id
    GROUP BY 1, 2
    """,
    "COMMENT ON VIEW analytics.daily_model_usage IS "
    "'Agent executions per UTC day and model: count, sessions, tokens and mean execution time.'",
    "COMMENT ON COLUMN analytics.daily_model_usage.day IS "
    "'UTC calendar day the execution was recorded (execution_history.created_at).'",
    "COMMENT ON COLUMN analytics.daily_model_usage.model IS "
    "'Model of the session the execution belongs to (codex_sessions.model).'",
    "COMMENT ON COLUMN analytics.daily_model_usage.executions IS "
    "'Number of executions (prompt/response rounds).'",
    "COMMENT ON COLUMN analytics.daily_model_usage.sessions IS "
    "'Number of distinct sessions with at least one execution that day.'",
    "COMMENT ON COLUMN analytics.daily_model_usage.tokens_used IS "
    "'Sum of tokens_used; executions without a token count add 0.'",
    "COMMENT ON COLUMN analytics.daily_model_usage.mean_execution_time_ms IS "
    "'Mean execution_time_ms, in milliseconds, of the executions that recorded one.'",
    # -- sessions by status, per day
    """
    CREATE VIEW analytics.daily_sessions_by_status AS
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
           status,
           count(*) AS sessions
    FROM core.codex_sessions
    GROUP BY 1, 2
    """,
    "COMMENT ON VIEW analytics.daily_sessions_by_status IS "
    "'Agent sessions started per UTC day, by their current status.'",
    "COMMENT ON COLUMN analytics.daily_sessions_by_status.day IS "
    "'UTC calendar day the session was created.'",
    "COMMENT ON COLUMN analytics.daily_sessions_by_status.status IS "
    "'The session''s status now (codex_sessions.status), not on that day.'",
    "COMMENT ON COLUMN analytics.daily_sessions_by_status.sessions IS 'Number of sessions.'",
    # -- sandbox error rate, per day
    """
    CREATE VIEW analytics.daily_sandbox_errors AS
    SELECT (executed_at AT TIME ZONE 'UTC')::date AS day,
           count(*) AS runs,
           count(*) FILTER (WHERE NULLIF(btrim(error), '') IS NOT NULL) AS failed_runs,
           round(count(*) FILTER (WHERE NULLIF(btrim(error), '') IS NOT NULL)::numeric
                 / count(*), 4) AS error_rate
    FROM core.sandbox_executions
    GROUP BY 1
    """,
    "COMMENT ON VIEW analytics.daily_sandbox_errors IS "
    "'Sandboxed SQL runs per UTC day and the share that failed.'",
    "COMMENT ON COLUMN analytics.daily_sandbox_errors.day IS "
    "'UTC calendar day of the run (sandbox_executions.executed_at).'",
    "COMMENT ON COLUMN analytics.daily_sandbox_errors.runs IS 'Number of sandbox runs.'",
    "COMMENT ON COLUMN analytics.daily_sandbox_errors.failed_runs IS "
    "'Runs with a non-empty error.'",
    "COMMENT ON COLUMN analytics.daily_sandbox_errors.error_rate IS "
    "'failed_runs / runs, from 0 to 1 (4 decimals).'",
    # -- tool-call cache: live and expired entries, per day and tool
    """
    CREATE VIEW analytics.daily_tool_cache AS
    SELECT (cached_at AT TIME ZONE 'UTC')::date AS day,
           tool_name,
           count(*) AS entries,
           count(*) FILTER (WHERE expires_at IS NULL OR expires_at > now()) AS live_entries,
           count(*) FILTER (WHERE expires_at <= now()) AS expired_entries,
           count(*) FILTER (WHERE expires_at IS NULL) AS entries_without_expiry,
           count(*) - count(DISTINCT arguments) AS refills,
           round(avg(EXTRACT(epoch FROM expires_at - cached_at))::numeric, 1)
               AS mean_ttl_seconds
    FROM core.mcp_cache
    GROUP BY 1, 2
    """,
    "COMMENT ON VIEW analytics.daily_tool_cache IS "
    "'MCP tool-call cache entries written per UTC day and tool, live or expired now. "
    "The cache table records writes only: a hit leaves no row.'",
    "COMMENT ON COLUMN analytics.daily_tool_cache.day IS 'UTC calendar day the entry was cached.'",
    "COMMENT ON COLUMN analytics.daily_tool_cache.tool_name IS 'MCP tool called.'",
    "COMMENT ON COLUMN analytics.daily_tool_cache.entries IS "
    "'Entries written (each one a call that missed the cache and was stored).'",
    "COMMENT ON COLUMN analytics.daily_tool_cache.live_entries IS "
    "'Entries not expired now: a matching call would be a cache hit.'",
    "COMMENT ON COLUMN analytics.daily_tool_cache.expired_entries IS "
    "'Entries whose expires_at has passed.'",
    "COMMENT ON COLUMN analytics.daily_tool_cache.entries_without_expiry IS "
    "'Entries with no expires_at (never expire).'",
    "COMMENT ON COLUMN analytics.daily_tool_cache.refills IS "
    "'Entries for a call (tool and arguments) already cached earlier that day: "
    "a miss on a known call, usually after expiry.'",
    "COMMENT ON COLUMN analytics.daily_tool_cache.mean_ttl_seconds IS "
    "'Mean of expires_at - cached_at in seconds, over entries that expire.'",
    # -- active users, per day (counts only: no user ids, emails or addresses)
    """
    CREATE VIEW analytics.daily_active_users AS
    SELECT (session_start AT TIME ZONE 'UTC')::date AS day,
           count(DISTINCT user_id) AS active_users,
           count(*) AS sessions,
           COALESCE(sum(actions_count), 0)::bigint AS actions,
           round((avg(EXTRACT(epoch FROM session_end - session_start)) / 60)::numeric, 1)
               AS mean_session_minutes
    FROM analytics.user_sessions
    GROUP BY 1
    """,
    "COMMENT ON VIEW analytics.daily_active_users IS "
    "'Portal users active per UTC day (counts only, no identities).'",
    "COMMENT ON COLUMN analytics.daily_active_users.day IS "
    "'UTC calendar day the usage session started.'",
    "COMMENT ON COLUMN analytics.daily_active_users.active_users IS "
    "'Distinct users with a session starting that day.'",
    "COMMENT ON COLUMN analytics.daily_active_users.sessions IS 'Usage sessions started.'",
    "COMMENT ON COLUMN analytics.daily_active_users.actions IS "
    "'Sum of actions_count over those sessions.'",
    "COMMENT ON COLUMN analytics.daily_active_users.mean_session_minutes IS "
    "'Mean length in minutes of the sessions that have ended.'",
    # -- database size history, from manage.py snapshot_stats
    """
    CREATE VIEW analytics.database_size_history AS
    SELECT captured_at,
           (captured_at AT TIME ZONE 'UTC')::date AS day,
           alias,
           database,
           database_size_bytes,
           round(database_size_bytes / 1048576.0, 1) AS database_size_mb,
           database_size_bytes - lag(database_size_bytes) OVER (
               PARTITION BY alias, database ORDER BY captured_at
           ) AS size_change_bytes,
           connections_total,
           max_connections
    FROM analytics.stats_snapshots
    """,
    "COMMENT ON VIEW analytics.database_size_history IS "
    "'Size of each database at each statistics snapshot (manage.py snapshot_stats).'",
    "COMMENT ON COLUMN analytics.database_size_history.captured_at IS "
    "'When the snapshot was taken.'",
    "COMMENT ON COLUMN analytics.database_size_history.day IS 'UTC calendar day of captured_at.'",
    "COMMENT ON COLUMN analytics.database_size_history.alias IS "
    "'Django database alias the snapshot was taken through.'",
    "COMMENT ON COLUMN analytics.database_size_history.database IS 'PostgreSQL database name.'",
    "COMMENT ON COLUMN analytics.database_size_history.database_size_bytes IS "
    "'pg_database_size() in bytes.'",
    "COMMENT ON COLUMN analytics.database_size_history.database_size_mb IS "
    "'The same in MiB (1 decimal).'",
    "COMMENT ON COLUMN analytics.database_size_history.size_change_bytes IS "
    "'Bytes gained (negative: lost) since the previous snapshot of the same alias and "
    "database; empty for the first.'",
    "COMMENT ON COLUMN analytics.database_size_history.connections_total IS "
    "'Connections to the server at capture time.'",
    "COMMENT ON COLUMN analytics.database_size_history.max_connections IS "
    "'The server''s max_connections setting.'",
)

DROP = (
    "DROP VIEW IF EXISTS analytics.database_size_history",
    "DROP VIEW IF EXISTS analytics.daily_active_users",
    "DROP VIEW IF EXISTS analytics.daily_tool_cache",
    "DROP VIEW IF EXISTS analytics.daily_sandbox_errors",
    "DROP VIEW IF EXISTS analytics.daily_sessions_by_status",
    "DROP VIEW IF EXISTS analytics.daily_model_usage",
)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_diagnostics_permissions"),
        # The views read core's tables: migrating core backwards must drop them first.
        ("core", "0001_initial"),
    ]

    operations = [migrations.RunSQL(sql=CREATE, reverse_sql=DROP)]
