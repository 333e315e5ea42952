"""Server settings from ``pg_settings`` and the connected role's privileges.

Some settings are hidden from roles without ``pg_read_all_settings`` (the row is
absent, e.g. ``shared_preload_libraries``), and ``sourcefile`` is only shown to
such roles; both degrade to "hidden" on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.runner import Query, Result, run


@dataclass(frozen=True)
class Setting:
    name: str
    setting: str | None
    unit: str | None
    source: str | None
    sourcefile: str | None
    sourceline: int | None
    boot_val: str | None
    reset_val: str | None
    pending_restart: bool
    context: str
    vartype: str
    short_desc: str | None


SETTINGS = Query(
    "settings",
    """
SELECT name, setting, unit, source, sourcefile, sourceline, boot_val, reset_val,
       pending_restart, context, vartype, short_desc
FROM pg_settings
WHERE name = ANY(%(names)s)
ORDER BY name
""",
    Setting,
)


def settings_named(alias: str, names: list[str]) -> Result[Setting]:
    return run(alias, SETTINGS, {"names": names})


@dataclass(frozen=True)
class Privileges:
    role: str
    is_superuser: bool
    has_pg_monitor: bool
    has_read_all_stats: bool
    has_read_all_settings: bool
    has_stat_scan_tables: bool
    has_signal_backend: bool
    can_connect: bool
    pgss_installed_version: str | None
    pgss_default_version: str | None
    pgss_schema: str | None
    reset_function: str | None
    can_reset: bool | None
    shared_preload_libraries: str | None
    track_io_timing: str
    track_activity_query_size: int
    track_counts: str
    track_activities: str


PRIVILEGES = Query(
    "privileges",
    """
WITH ext AS (
  SELECT e.extversion, e.extnamespace,
         (SELECT nspname FROM pg_namespace WHERE oid = e.extnamespace)::text AS schema
  FROM pg_extension e WHERE e.extname = 'pg_stat_statements'
), reset_fn AS (
  SELECT p.oid,
         quote_ident(ext.schema) || '.' || quote_ident(p.proname)
           || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature
  FROM pg_proc p JOIN ext ON p.pronamespace = ext.extnamespace
  WHERE p.proname = 'pg_stat_statements_reset'
  ORDER BY p.pronargs DESC LIMIT 1
)
SELECT current_user AS role,
       coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)
           AS is_superuser,
       pg_has_role(current_user, 'pg_monitor', 'USAGE') AS has_pg_monitor,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS has_read_all_stats,
       pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') AS has_read_all_settings,
       pg_has_role(current_user, 'pg_stat_scan_tables', 'USAGE') AS has_stat_scan_tables,
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS has_signal_backend,
       has_database_privilege(current_database(), 'CONNECT') AS can_connect,
       (SELECT extversion FROM ext) AS pgss_installed_version,
       (SELECT default_version FROM pg_available_extensions
        WHERE name = 'pg_stat_statements') AS pgss_default_version,
       (SELECT schema FROM ext) AS pgss_schema,
       (SELECT signature FROM reset_fn) AS reset_function,
       (SELECT has_function_privilege(oid, 'EXECUTE') FROM reset_fn) AS can_reset,
       (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries')
           AS shared_preload_libraries,
       current_setting('track_io_timing') AS track_io_timing,
       (SELECT setting::int FROM pg_settings WHERE name = 'track_activity_query_size')
           AS track_activity_query_size,
       current_setting('track_counts') AS track_counts,
       current_setting('track_activities') AS track_activities
""",
    Privileges,
)


def privileges(alias: str) -> Result[Privileges]:
    return run(alias, PRIVILEGES)
