"""Self-checks that explain what the connected role cannot see, and how to fix it.

Fixes are exact statements: identifiers are quoted by psycopg, and Cloud SQL gets its
own instructions (no real superuser there: the ``postgres`` user is a member of
``cloudsqlsuperuser``; server settings are instance flags).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from diagnostics.queries import statements
from diagnostics.queries.server import ServerInfo
from diagnostics.queries.settings import Privileges

CLOUD_SQL_FLAGS_NOTE = (
    "On Cloud SQL, --database-flags replaces every flag already set on the instance: "
    "repeat the current ones (gcloud sql instances describe INSTANCE) in the same command."
)


def ident(*names: str) -> str:
    """A quoted (possibly qualified) identifier, as PostgreSQL would accept it."""
    return sql.Identifier(*names).as_string(None)


@dataclass(frozen=True)
class Fix:
    where: str
    command: str


@dataclass(frozen=True)
class StatementsStatus:
    state: str  # ok, not_installed, not_preloaded, unreadable, error
    title: str
    detail: str
    fixes: tuple[Fix, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def _preload_fixes() -> tuple[Fix, ...]:
    return (
        Fix(
            "Self-managed server (as a superuser; keep any libraries already listed, "
            "see SHOW shared_preload_libraries), then restart PostgreSQL",
            "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';",
        ),
        Fix(
            "Cloud SQL (restarts the instance). " + CLOUD_SQL_FLAGS_NOTE,
            "gcloud sql instances patch INSTANCE "
            "--database-flags=cloudsql.enable_pg_stat_statements=on",
        ),
    )


def statements_status(alias: str, info: ServerInfo) -> StatementsStatus:
    """Is pg_stat_statements installed here, preloaded, and readable by this role?"""
    if not info.pgss_version or not info.pgss_schema:
        return StatementsStatus(
            "not_installed",
            f"pg_stat_statements is not installed in database {info.database}.",
            "The extension must be created in each database whose statements you want to "
            "see, and its library must be preloaded by the server.",
            (
                Fix(
                    f"In database {info.database}, as a superuser (Cloud SQL: the postgres "
                    "user, a member of cloudsqlsuperuser)",
                    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;",
                ),
                *_preload_fixes(),
            ),
        )
    probe = statements.probe(alias, schema=info.pgss_schema)
    if probe.ok:
        return StatementsStatus("ok", "pg_stat_statements is installed and readable.", "")
    if probe.sqlstate == "55000":
        return StatementsStatus(
            "not_preloaded",
            "pg_stat_statements is installed but its library is not preloaded.",
            "The server was started without pg_stat_statements in "
            "shared_preload_libraries, so it collects nothing.",
            _preload_fixes(),
        )
    if probe.sqlstate == "42501":
        view = ident(info.pgss_schema, "pg_stat_statements")
        role = ident(info.role)
        return StatementsStatus(
            "unreadable",
            f"Role {info.role} may not read {info.pgss_schema}.pg_stat_statements.",
            probe.error or "",
            (
                Fix(
                    "As the extension's owner or a superuser (Cloud SQL: the postgres user)",
                    f"GRANT USAGE ON SCHEMA {ident(info.pgss_schema)} TO {role};\n"
                    f"GRANT SELECT ON {view} TO {role};",
                ),
            ),
        )
    return StatementsStatus("error", "pg_stat_statements could not be read.", probe.error or "")


@dataclass(frozen=True)
class PrivilegeCheck:
    name: str
    ok: bool | None  # None: cannot tell
    detail: str
    fixes: tuple[Fix, ...] = ()


def privilege_checks(
    p: Privileges, info: ServerInfo, pgss: StatementsStatus
) -> list[PrivilegeCheck]:
    role = ident(p.role)
    grant_where = "As a superuser (Cloud SQL: the postgres user, a member of cloudsqlsuperuser)"
    checks = [
        PrivilegeCheck(
            "Connected role",
            True,
            f"{p.role}"
            + (
                " is a superuser: it sees and may signal everything. In production prefer "
                "a role that holds pg_monitor and pg_signal_backend only."
                if p.is_superuser
                else " is not a superuser; the checks below say what it can see."
            ),
        ),
        PrivilegeCheck(
            "pg_monitor (includes pg_read_all_stats, pg_read_all_settings, pg_stat_scan_tables)",
            p.has_pg_monitor,
            "Needed to see other roles' query text, state, client address and wait events, "
            "and every statement's text in pg_stat_statements.",
            () if p.has_pg_monitor else (Fix(grant_where, f"GRANT pg_monitor TO {role};"),),
        ),
        PrivilegeCheck(
            "pg_read_all_stats",
            p.has_read_all_stats,
            "Other roles' activity and statements; granted by pg_monitor.",
            ()
            if p.has_read_all_stats
            else (Fix(grant_where, f"GRANT pg_read_all_stats TO {role};"),),
        ),
        PrivilegeCheck(
            "pg_read_all_settings",
            p.has_read_all_settings,
            "Settings hidden from ordinary roles (shared_preload_libraries, config file "
            "locations); granted by pg_monitor.",
            ()
            if p.has_read_all_settings
            else (Fix(grant_where, f"GRANT pg_read_all_settings TO {role};"),),
        ),
        PrivilegeCheck(
            "pg_signal_backend",
            p.has_signal_backend,
            "Needed to cancel or terminate other roles' sessions (never superusers'; on "
            "Cloud SQL never cloudsqladmin's).",
            ()
            if p.has_signal_backend
            else (Fix(grant_where, f"GRANT pg_signal_backend TO {role};"),),
        ),
        PrivilegeCheck(
            f"CONNECT on database {info.database}",
            p.can_connect,
            "Needed for the database size.",
            ()
            if p.can_connect
            else (
                Fix(
                    "As the database owner",
                    f"GRANT CONNECT ON DATABASE {ident(info.database)} TO {role};",
                ),
            ),
        ),
    ]
    # pg_stat_statements: installed, preloaded, up to date, resettable.
    checks.append(
        PrivilegeCheck(
            "pg_stat_statements installed and preloaded",
            pgss.ok if pgss.state != "error" else None,
            pgss.title + (" " + pgss.detail if pgss.detail and not pgss.ok else ""),
            pgss.fixes,
        )
    )
    if p.shared_preload_libraries is None:
        preload_detail = (
            "shared_preload_libraries is hidden from this role (needs pg_read_all_settings); "
            "the check above read pg_stat_statements instead."
        )
    else:
        preload_detail = f"shared_preload_libraries = '{p.shared_preload_libraries}'."
    checks.append(
        PrivilegeCheck(
            "Preloaded libraries",
            None
            if p.shared_preload_libraries is None
            else "pg_stat_statements" in p.shared_preload_libraries,
            preload_detail,
        )
    )
    if p.pgss_installed_version and p.pgss_default_version:
        current = p.pgss_installed_version == p.pgss_default_version
        checks.append(
            PrivilegeCheck(
                "pg_stat_statements extension version",
                current,
                f"Installed {p.pgss_installed_version}, the server offers "
                f"{p.pgss_default_version}. After a major upgrade the extension keeps its "
                "old version (and old columns) until updated.",
                ()
                if current
                else (
                    Fix(
                        f"In database {info.database}, as the extension's owner or a superuser",
                        "ALTER EXTENSION pg_stat_statements UPDATE;",
                    ),
                ),
            )
        )
    if p.reset_function:
        checks.append(
            PrivilegeCheck(
                "May reset query statistics",
                bool(p.can_reset),
                "pg_stat_statements_reset() is superuser-only unless granted; the portal "
                "resets this database's statistics only.",
                ()
                if p.can_reset
                else (
                    Fix(
                        grant_where,
                        f"GRANT EXECUTE ON FUNCTION {p.reset_function} TO {role};",
                    ),
                ),
            )
        )
    checks.append(
        PrivilegeCheck(
            "track_io_timing",
            p.track_io_timing == "on",
            f"Currently {p.track_io_timing}. I/O time per statement needs it.",
            ()
            if p.track_io_timing == "on"
            else (
                Fix(
                    "Self-managed server, as a superuser",
                    "ALTER SYSTEM SET track_io_timing = on;\nSELECT pg_reload_conf();",
                ),
                Fix(
                    "Cloud SQL. " + CLOUD_SQL_FLAGS_NOTE,
                    "gcloud sql instances patch INSTANCE --database-flags=track_io_timing=on",
                ),
            ),
        )
    )
    size_ok = p.track_activity_query_size >= 4096
    checks.append(
        PrivilegeCheck(
            "track_activity_query_size",
            size_ok,
            f"Currently {p.track_activity_query_size} bytes; query text on the Activity page "
            "is cut at this length.",
            ()
            if size_ok
            else (
                Fix(
                    "Self-managed server, as a superuser, then restart PostgreSQL",
                    "ALTER SYSTEM SET track_activity_query_size = 4096;",
                ),
                Fix(
                    "Cloud SQL (restarts the instance). " + CLOUD_SQL_FLAGS_NOTE,
                    "gcloud sql instances patch INSTANCE "
                    "--database-flags=track_activity_query_size=4096",
                ),
            ),
        )
    )
    return checks
