"""Self-checks that explain what the connected role cannot see, and how to fix it.

Fixes are exact statements: identifiers are quoted by psycopg, and Cloud SQL gets its
own instructions (no real superuser there: the ``postgres`` user is a member of
``cloudsqlsuperuser``; server settings are instance flags).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext, gettext_lazy
from psycopg import sql

from diagnostics.queries import statements
from diagnostics.queries.server import ServerInfo
from diagnostics.queries.settings import Privileges

CLOUD_SQL_FLAGS_NOTE = gettext_lazy(
    "On Cloud SQL, --database-flags replaces every flag already set on the instance: "
    "repeat the current ones (gcloud sql instances describe INSTANCE) in the same command."
)


def _cloud_sql(where: str) -> str:
    """A Cloud SQL fix's heading followed by the --database-flags warning."""
    return gettext("%(where)s. %(note)s") % {"where": where, "note": CLOUD_SQL_FLAGS_NOTE}


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
            gettext(
                "Self-managed server (as a superuser; keep any libraries already listed, "
                "see SHOW shared_preload_libraries), then restart PostgreSQL"
            ),
            "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';",
        ),
        Fix(
            _cloud_sql(gettext("Cloud SQL (restarts the instance)")),
            "gcloud sql instances patch INSTANCE "
            "--database-flags=cloudsql.enable_pg_stat_statements=on",
        ),
    )


def statements_status(alias: str, info: ServerInfo) -> StatementsStatus:
    """Is pg_stat_statements installed here, preloaded, and readable by this role?"""
    if not info.pgss_version or not info.pgss_schema:
        return StatementsStatus(
            "not_installed",
            gettext("pg_stat_statements is not installed in database %(database)s.")
            % {"database": info.database},
            gettext(
                "The extension must be created in each database whose statements you want to "
                "see, and its library must be preloaded by the server."
            ),
            (
                Fix(
                    gettext(
                        "In database %(database)s, as a superuser (Cloud SQL: the postgres "
                        "user, a member of cloudsqlsuperuser)"
                    )
                    % {"database": info.database},
                    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;",
                ),
                *_preload_fixes(),
            ),
        )
    probe = statements.probe(alias, schema=info.pgss_schema)
    if probe.ok:
        return StatementsStatus("ok", gettext("pg_stat_statements is installed and readable."), "")
    if probe.sqlstate == "55000":
        return StatementsStatus(
            "not_preloaded",
            gettext("pg_stat_statements is installed but its library is not preloaded."),
            gettext(
                "The server was started without pg_stat_statements in "
                "shared_preload_libraries, so it collects nothing."
            ),
            _preload_fixes(),
        )
    if probe.sqlstate == "42501":
        view = ident(info.pgss_schema, "pg_stat_statements")
        role = ident(info.role)
        return StatementsStatus(
            "unreadable",
            gettext("Role %(role)s may not read %(schema)s.pg_stat_statements.")
            % {"role": info.role, "schema": info.pgss_schema},
            probe.error or "",
            (
                Fix(
                    gettext(
                        "As the extension's owner or a superuser (Cloud SQL: the postgres user)"
                    ),
                    f"GRANT USAGE ON SCHEMA {ident(info.pgss_schema)} TO {role};\n"
                    f"GRANT SELECT ON {view} TO {role};",
                ),
            ),
        )
    return StatementsStatus(
        "error", gettext("pg_stat_statements could not be read."), probe.error or ""
    )


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
    grant_where = gettext(
        "As a superuser (Cloud SQL: the postgres user, a member of cloudsqlsuperuser)"
    )
    checks = [
        PrivilegeCheck(
            gettext("Connected role"),
            True,
            (
                gettext(
                    "%(role)s is a superuser: it sees and may signal everything. In production "
                    "prefer a role that holds pg_monitor and pg_signal_backend only."
                )
                if p.is_superuser
                else gettext("%(role)s is not a superuser; the checks below say what it can see.")
            )
            % {"role": p.role},
        ),
        PrivilegeCheck(
            gettext(
                "pg_monitor (includes pg_read_all_stats, pg_read_all_settings, pg_stat_scan_tables)"
            ),
            p.has_pg_monitor,
            gettext(
                "Needed to see other roles' query text, state, client address and wait events, "
                "and every statement's text in pg_stat_statements."
            ),
            () if p.has_pg_monitor else (Fix(grant_where, f"GRANT pg_monitor TO {role};"),),
        ),
        PrivilegeCheck(
            "pg_read_all_stats",
            p.has_read_all_stats,
            gettext("Other roles' activity and statements; granted by pg_monitor."),
            ()
            if p.has_read_all_stats
            else (Fix(grant_where, f"GRANT pg_read_all_stats TO {role};"),),
        ),
        PrivilegeCheck(
            "pg_read_all_settings",
            p.has_read_all_settings,
            gettext(
                "Settings hidden from ordinary roles (shared_preload_libraries, config file "
                "locations); granted by pg_monitor."
            ),
            ()
            if p.has_read_all_settings
            else (Fix(grant_where, f"GRANT pg_read_all_settings TO {role};"),),
        ),
        PrivilegeCheck(
            "pg_signal_backend",
            p.has_signal_backend,
            gettext(
                "Needed to cancel or terminate other roles' sessions (never superusers'; on "
                "Cloud SQL never cloudsqladmin's)."
            ),
            ()
            if p.has_signal_backend
            else (Fix(grant_where, f"GRANT pg_signal_backend TO {role};"),),
        ),
        PrivilegeCheck(
            gettext("CONNECT on database %(database)s") % {"database": info.database},
            p.can_connect,
            gettext("Needed for the database size."),
            ()
            if p.can_connect
            else (
                Fix(
                    gettext("As the database owner"),
                    f"GRANT CONNECT ON DATABASE {ident(info.database)} TO {role};",
                ),
            ),
        ),
    ]
    # pg_stat_statements: installed, preloaded, up to date, resettable.
    checks.append(
        PrivilegeCheck(
            gettext("pg_stat_statements installed and preloaded"),
            pgss.ok if pgss.state != "error" else None,
            pgss.title + (" " + pgss.detail if pgss.detail and not pgss.ok else ""),
            pgss.fixes,
        )
    )
    if p.shared_preload_libraries is None:
        preload_detail = gettext(
            "shared_preload_libraries is hidden from this role (needs pg_read_all_settings); "
            "the check above read pg_stat_statements instead."
        )
    else:
        preload_detail = f"shared_preload_libraries = '{p.shared_preload_libraries}'."
    checks.append(
        PrivilegeCheck(
            gettext("Preloaded libraries"),
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
                gettext("pg_stat_statements extension version"),
                current,
                gettext(
                    "Installed %(installed)s, the server offers %(default)s. After a major "
                    "upgrade the extension keeps its old version (and old columns) until updated."
                )
                % {"installed": p.pgss_installed_version, "default": p.pgss_default_version},
                ()
                if current
                else (
                    Fix(
                        gettext("In database %(database)s, as the extension's owner or a superuser")
                        % {"database": info.database},
                        "ALTER EXTENSION pg_stat_statements UPDATE;",
                    ),
                ),
            )
        )
    if p.reset_function:
        checks.append(
            PrivilegeCheck(
                gettext("May reset query statistics"),
                bool(p.can_reset),
                gettext(
                    "pg_stat_statements_reset() is superuser-only unless granted; the portal "
                    "resets this database's statistics only."
                ),
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
            gettext("Currently %(value)s. I/O time per statement needs it.")
            % {"value": p.track_io_timing},
            ()
            if p.track_io_timing == "on"
            else (
                Fix(
                    gettext("Self-managed server, as a superuser"),
                    "ALTER SYSTEM SET track_io_timing = on;\nSELECT pg_reload_conf();",
                ),
                Fix(
                    _cloud_sql(gettext("Cloud SQL")),
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
            gettext(
                "Currently %(size)s bytes; query text on the Activity page is cut at this length."
            )
            % {"size": p.track_activity_query_size},
            ()
            if size_ok
            else (
                Fix(
                    gettext("Self-managed server, as a superuser, then restart PostgreSQL"),
                    "ALTER SYSTEM SET track_activity_query_size = 4096;",
                ),
                Fix(
                    _cloud_sql(gettext("Cloud SQL (restarts the instance)")),
                    "gcloud sql instances patch INSTANCE "
                    "--database-flags=track_activity_query_size=4096",
                ),
            ),
        )
    )
    return checks
