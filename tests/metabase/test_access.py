"""``manage.py metabase_access``, tested by logging in as the Metabase role.

Each test runs the command for real on the test database, then connects as the login
role it created, over TCP with its password. The embedded cluster requires scram
passwords (a wrong password is refused: the first test), so each login is a real
authentication. Catalog reads run on the test's own superuser connection.
"""

from __future__ import annotations

import re
import secrets

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from psycopg import errors, sql

from tests.db import roles as db_roles
from tests.metabase.support import (
    drop_roles,
    execute,
    fetch,
    login,
    metabase_roles,
    relations,
    role_exists,
    run,
    unique_name,
)

# metabase_access creates and alters roles: the instance's administrator, here the
# cluster's superuser, by name (tests/db/roles.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_superuser"),
]

READABLE = ["analytics", "core"]
FORBIDDEN = ["auth", "audit"]
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")


@pytest.fixture
def access(monkeypatch):
    with metabase_roles(monkeypatch) as roles:
        yield roles


@pytest.fixture
def granted(access):
    run(*access.args)
    return access


def ident(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def user_tables() -> list[tuple[str, str]]:
    """Every table outside the system schemas (where writes must all fail)."""
    return fetch(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%%' ORDER BY 1, 2"
    )


def fingerprint(tables: list[tuple[str, str]]) -> dict:
    """Row count and a digest of the rows of each table."""
    result = {}
    for schema, name in tables:
        result[(schema, name)] = fetch(
            sql.SQL(
                "SELECT count(*), md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), '')) "
                "FROM {} AS t"
            ).format(ident(schema, name))
        )[0]
    return result


def some_rows() -> None:
    """A few rows in auth, core, analytics and audit for the write attempts to aim at."""
    from accounts.models import Company, User
    from analytics.models import UserSession
    from audit.models import ActivityLog
    from core.models import CodexSession, ExecutionHistory, Project

    user = User.objects.create_user(email="writer@example.com", password="x" * 16)
    company = Company.objects.create(name="Acme")
    Project.objects.create(name="P", company=company, owner=user)
    session = CodexSession.objects.create(
        session_id="00000000-0000-0000-0000-000000000001", user_id="u1", model="m", status="ok"
    )
    ExecutionHistory.objects.create(session=session, prompt="p", tokens_used=3)
    UserSession.objects.create(user=user, ip_address="10.0.0.1")
    ActivityLog.objects.create(action="login", actor_email=user.email, ip_address="10.0.0.2")


def catalog_state(names: list[str]) -> dict:
    """Everything the catalog says about these roles and their privileges."""
    params = {"n": names}
    return {
        "roles": fetch(
            "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, "
            "rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil "
            "FROM pg_roles WHERE rolname = ANY(%(n)s) ORDER BY 1",
            params,
        ),
        # The stored verifier has a random salt: any password reset would change it.
        "passwords": fetch(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%(n)s) ORDER BY 1",
            params,
        ),
        "memberships": fetch(
            "SELECT roleid::regrole::text, member::regrole::text, admin_option "
            "FROM pg_auth_members WHERE roleid::regrole::text = ANY(%(n)s) "
            "OR member::regrole::text = ANY(%(n)s) ORDER BY 1, 2",
            params,
        ),
        "settings": fetch(
            "SELECT setdatabase, setconfig FROM pg_db_role_setting WHERE setrole IN "
            "(SELECT oid FROM pg_roles WHERE rolname = ANY(%(n)s)) ORDER BY 1",
            params,
        ),
        "database_acl": fetch(
            "SELECT datacl::text FROM pg_database WHERE datname = current_database()"
        ),
        "schema_acls": fetch("SELECT nspname, nspacl::text FROM pg_namespace ORDER BY 1"),
        "relation_acls": fetch(
            "SELECT c.oid::regclass::text, c.relacl::text FROM pg_class c "
            "WHERE c.relacl IS NOT NULL ORDER BY 1"
        ),
        "default_acls": fetch(
            "SELECT defaclrole::regrole::text, defaclnamespace, defaclobjtype, "
            "defaclacl::text FROM pg_default_acl ORDER BY 1, 2, 3"
        ),
        "table_privileges": fetch(
            "SELECT r.rolname, c.oid::regclass::text, p.privilege, "
            "has_table_privilege(r.oid, c.oid, p.privilege) "
            "FROM pg_roles r, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, "
            "unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege) "
            "WHERE r.rolname = ANY(%(n)s) AND c.relkind IN ('r', 'v', 'm', 'p') "
            "AND n.nspname IN ('analytics', 'core', 'auth', 'audit', 'public') ORDER BY 1, 2, 3",
            params,
        ),
    }


# --- logging in -----------------------------------------------------------------------


def test_the_metabase_role_logs_in_with_its_password_and_a_wrong_one_is_refused(granted):
    with login(granted) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (granted.login,)
        assert conn.pgconn.used_password
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(granted, password=granted.password + "-wrong")


def test_the_role_settings_hold_in_every_new_session(granted):
    with login(granted) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ("
                "'default_transaction_read_only', 'statement_timeout', "
                "'idle_in_transaction_session_timeout', 'search_path')"
            ).fetchall()
        )
    assert settings == {
        "default_transaction_read_only": "on",
        "statement_timeout": "60000",
        "idle_in_transaction_session_timeout": "60000",
        "search_path": "analytics, core",
    }
    assert fetch(
        "SELECT rolconnlimit FROM pg_roles WHERE rolname = %(n)s", {"n": granted.login}
    ) == [(20,)]


def test_options_set_the_limits_and_timeouts(access):
    run(
        *access.args,
        "--connection-limit",
        "7",
        "--statement-timeout",
        "5min",
        "--idle-in-transaction-timeout",
        "1500ms",
    )
    with login(access) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("5min",)
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("1500ms",)
    assert fetch(
        "SELECT rolconnlimit FROM pg_roles WHERE rolname = %(n)s", {"n": access.login}
    ) == [(7,)]


# --- what the role can do -------------------------------------------------------------


def test_it_can_select_from_every_table_and_view_in_analytics_and_core(granted):
    some_rows()
    readable = relations(READABLE)
    views = relations(READABLE, "v")
    assert len(views) >= 6
    with login(granted) as conn:
        for schema, name in readable:
            conn.execute(sql.SQL("SELECT * FROM {}").format(ident(schema, name))).fetchall()
        # search_path = analytics, core: Metabase's native SQL may leave schemas out.
        assert conn.execute("SELECT count(*) FROM execution_history").fetchone() == (1,)


def test_metabase_style_metadata_queries_list_every_table_and_column(granted):
    expected = set(relations(READABLE))
    expected_columns = set(
        fetch(
            "SELECT table_schema::text, table_name::text, column_name::text "
            "FROM information_schema.columns WHERE table_schema = ANY(%(s)s)",
            {"s": READABLE},
        )
    )
    with login(granted) as conn:
        tables = set(
            conn.execute(
                "SELECT table_schema::text, table_name::text FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
        )
        columns = set(
            conn.execute(
                "SELECT table_schema::text, table_name::text, column_name::text "
                "FROM information_schema.columns WHERE table_schema = ANY(%(s)s)",
                {"s": READABLE},
            ).fetchall()
        )
    # Exactly analytics and core: nothing of auth, audit or public is even listed.
    assert {(s, t) for s, t in tables if s != "public"} == expected
    assert {s for s, _ in tables} <= {"analytics", "core", "public"}
    assert columns == expected_columns


def migrate_as_the_migrator(*args: str) -> None:
    """``migrate`` as a deployment runs it: on the migrator's connection."""
    with db_roles.default_as(db_roles.MIGRATOR):
        call_command("migrate", *args, verbosity=0)


def test_a_table_added_by_a_later_migration_is_readable_without_running_the_command_again(
    access, monkeypatch
):
    monkeypatch.setenv("METABASE_MIGRATION_ROLE", db_roles.role_name(db_roles.MIGRATOR))
    migrate_as_the_migrator("metabaseapp", "zero")
    try:
        run(*access.args)
        assert fetch("SELECT to_regclass('core.metabase_late_report')") == [(None,)]

        migrate_as_the_migrator("metabaseapp")
        execute("INSERT INTO core.metabase_late_report (title, value) VALUES ('late', 42)")

        with login(access) as conn:
            rows = conn.execute("SELECT title, value FROM core.metabase_late_report").fetchall()
        assert rows == [("late", 42)]
        assert "nothing to change" in run(*access.args)
    finally:
        migrate_as_the_migrator("metabaseapp")


def test_default_privileges_follow_the_configured_migration_role(access):
    migrator = unique_name("migrator")
    execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(migrator)))
    execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA core TO {}").format(sql.Identifier(migrator)))
    try:
        out = run(*access.args, "--migration-role", migrator)
        assert f"tables {migrator} creates in core" in out
        execute(sql.SQL("SET ROLE {}").format(sql.Identifier(migrator)))
        try:
            execute("CREATE TABLE core.mbt_made_by_migrator (id integer)")
        finally:
            execute("RESET ROLE")
        with login(access) as conn:
            assert conn.execute("SELECT * FROM core.mbt_made_by_migrator").fetchall() == []
    finally:
        execute("DROP TABLE IF EXISTS core.mbt_made_by_migrator")
        drop_roles(migrator)


# --- what it cannot do ----------------------------------------------------------------


def test_writes_are_refused_by_default_as_read_only(granted):
    with login(granted) as conn, pytest.raises(errors.ReadOnlySqlTransaction):
        conn.execute("DELETE FROM core.projects")


def test_it_cannot_write_any_table_even_after_switching_read_only_off(granted):
    some_rows()
    tables = user_tables()
    assert {("core", "projects"), ("auth", "users"), ("audit", "activity_logs")} <= set(tables)
    before = fingerprint(tables)
    refused = 0
    with login(granted) as conn:
        conn.execute("SET default_transaction_read_only = off")
        for schema, name in tables:
            table = ident(schema, name)
            column = fetch(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = %(t)s::regclass "
                "AND attnum > 0 AND NOT attisdropped AND attidentity <> 'a' "
                "AND attgenerated = '' ORDER BY attnum LIMIT 1",
                {"t": f'"{schema}"."{name}"'},
            )[0][0]
            # Real writes, no WHERE false: had any been allowed, the data would change.
            for statement in (
                sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table),
                sql.SQL("UPDATE {t} SET {c} = {c}").format(t=table, c=sql.Identifier(column)),
                sql.SQL("DELETE FROM {}").format(table),
                sql.SQL("TRUNCATE {}").format(table),
            ):
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(statement)
                refused += 1
    assert refused == 4 * len(tables)
    assert fingerprint(tables) == before


def test_it_cannot_create_in_any_schema(granted):
    schemas = [
        row[0]
        for row in fetch(
            "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_toast%%' "
            "AND nspname NOT LIKE 'pg\\_temp\\_%%' ORDER BY 1"
        )
    ]
    assert {"public", "analytics", "core", "auth", "audit"} <= set(schemas)
    with login(granted) as conn:
        conn.execute("SET default_transaction_read_only = off")
        for schema in schemas:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(
                    sql.SQL("CREATE TABLE {} (id integer)").format(ident(schema, "mbt_probe"))
                )
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(
                    sql.SQL("CREATE VIEW {} AS SELECT 1 AS one").format(
                        ident(schema, "mbt_probe_view")
                    )
                )
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE SCHEMA mbt_probe")
    assert fetch("SELECT relname FROM pg_class WHERE relname LIKE 'mbt\\_probe%%'") == []
    assert fetch("SELECT nspname FROM pg_namespace WHERE nspname = 'mbt_probe'") == []


def test_it_cannot_select_anything_in_auth_or_audit(granted):
    some_rows()
    forbidden = relations(FORBIDDEN)
    assert ("auth", "users") in forbidden
    assert ("audit", "activity_logs") in forbidden
    with login(granted) as conn:
        for schema, name in forbidden:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT * FROM {}").format(ident(schema, name)))
        usage = conn.execute(
            "SELECT has_schema_privilege('auth', 'USAGE'), has_schema_privilege('audit', 'USAGE')"
        ).fetchone()
    assert usage == (False, False)


def test_it_sees_no_query_text_of_other_roles_in_pg_stat_statements(granted):
    fetch("SELECT email FROM auth.users WHERE email = %(e)s", {"e": "someone@example.com"})
    mine = fetch("SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%%FROM auth.users%%'")[
        0
    ][0]
    assert mine >= 1  # the superuser itself reads the text
    with login(granted) as conn:
        counts = conn.execute(
            "SELECT count(*) FILTER (WHERE query <> '<insufficient privilege>'), count(*) "
            "FROM public.pg_stat_statements WHERE userid <> "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()
    assert counts is not None
    visible, total = counts
    assert total >= mine
    assert visible == 0


# --- idempotence, drift, revoke -------------------------------------------------------


def test_running_twice_changes_nothing_the_second_time(access):
    names = [access.group, access.login]
    first = run(*access.args)
    assert re.search(r": \d+ changes?\b", first)
    assert f"create role {access.login}" in first
    state = catalog_state(names)
    assert dict(state["passwords"])[access.login].startswith("SCRAM-SHA-256$")

    second = run(*access.args)
    assert second.strip().endswith("nothing to change.")
    assert catalog_state(names) == state


def test_it_takes_back_what_it_did_not_grant(granted):
    group, login_role = granted.group, granted.login
    execute(sql.SQL("GRANT INSERT ON core.projects TO {}").format(sql.Identifier(group)))
    execute(sql.SQL("GRANT USAGE ON SCHEMA auth TO {}").format(sql.Identifier(group)))
    execute(sql.SQL("GRANT SELECT ON auth.users TO {}").format(sql.Identifier(login_role)))
    execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(group)))
    execute(
        sql.SQL("ALTER ROLE {} SET default_transaction_read_only = off").format(
            sql.Identifier(login_role)
        )
    )
    execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET statement_timeout = 0").format(
            sql.Identifier(login_role), sql.Identifier(connection.settings_dict["NAME"])
        )
    )
    with login(granted) as conn:
        assert conn.execute("SELECT count(*) FROM auth.users").fetchone() == (0,)

    out = run(*granted.args)
    assert f"revoke membership of {group} in pg_read_all_data" in out
    assert f"revoke INSERT on core.projects from {group}" in out
    assert f"revoke USAGE on schema auth from {group}" in out
    assert "revoke SELECT on auth.users from " + login_role in out  # noqa: S608 - a message
    assert f"set default_transaction_read_only = on for {login_role} (was off)" in out
    assert "reset statement_timeout = 0" in out
    with login(granted) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM auth.users")
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1min",)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)


def test_a_changed_password_is_set_again_and_the_old_one_stops_working(granted, monkeypatch):
    old = granted.password
    new = secrets.token_urlsafe(18)
    monkeypatch.setenv("METABASE_DB_PASSWORD", new)
    out = run(*granted.args)
    assert f"set the password of {granted.login}" in out
    with pytest.raises(psycopg.OperationalError):
        login(granted, password=old)
    with login(granted, password=new):
        pass


def test_create_on_public_is_taken_from_public_where_it_is_still_granted(access):
    # What every database had before PostgreSQL 15 (and keeps after pg_upgrade).
    execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    try:
        out = run(*access.args)
        assert "revoke CREATE on schema public from PUBLIC" in out
        with login(access) as conn:
            conn.execute("SET default_transaction_read_only = off")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("CREATE TABLE public.mbt_probe (id integer)")
    finally:
        # Back to the test database's own default (15+: PUBLIC has USAGE only).
        execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    assert "revoke CREATE on schema public" not in run(*access.args)


def test_revoke_leaves_no_privilege_behind(granted):
    names = [granted.group, granted.login]
    oids = [
        row[0] for row in fetch("SELECT oid FROM pg_roles WHERE rolname = ANY(%(n)s)", {"n": names})
    ]
    assert len(oids) == 2

    out = run("--revoke", *granted.args)
    assert f"drop role {granted.login}" in out
    assert f"drop role {granted.group}" in out

    assert fetch("SELECT rolname FROM pg_roles WHERE rolname = ANY(%(n)s)", {"n": names}) == []
    assert (
        fetch(
            "SELECT 1 FROM pg_auth_members WHERE roleid = ANY(%(o)s) OR member = ANY(%(o)s)",
            {"o": oids},
        )
        == []
    )
    assert fetch("SELECT 1 FROM pg_db_role_setting WHERE setrole = ANY(%(o)s)", {"o": oids}) == []
    assert fetch("SELECT 1 FROM pg_shdepend WHERE refobjid = ANY(%(o)s)", {"o": oids}) == []
    leftover = fetch(
        """
        SELECT 'database', datname::text FROM pg_database, aclexplode(datacl) a
            WHERE a.grantee = ANY(%(o)s)
        UNION ALL SELECT 'schema', nspname::text FROM pg_namespace, aclexplode(nspacl) a
            WHERE a.grantee = ANY(%(o)s)
        UNION ALL SELECT 'relation', oid::regclass::text FROM pg_class, aclexplode(relacl) a
            WHERE a.grantee = ANY(%(o)s)
        UNION ALL SELECT 'column', attrelid::regclass::text FROM pg_attribute,
            aclexplode(attacl) a WHERE a.grantee = ANY(%(o)s)
        UNION ALL SELECT 'default', defaclrole::regrole::text FROM pg_default_acl,
            aclexplode(defaclacl) a WHERE a.grantee = ANY(%(o)s)
        """,
        {"o": oids},
    )
    assert leftover == []
    assert "nothing to change" in run("--revoke", *granted.args)


def test_revoke_takes_back_connect_on_another_database_too_and_drops_both(granted):
    other = unique_name("db")
    execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(other)))
    try:
        execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(other), sql.Identifier(granted.group)
            )
        )
        out = run("--revoke", *granted.args)
        # pg_database is shared: the revoke reaches every database from this one.
        assert f"revoke CONNECT on database {other} from {granted.group}" in out
        assert f"drop role {granted.group}" in out
        assert not role_exists(granted.group)
        assert not role_exists(granted.login)
    finally:
        drop_roles(granted.group)
        execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(other)))


# --- dry run, check, bad input --------------------------------------------------------


def test_dry_run_prints_the_sql_with_a_password_placeholder_and_changes_nothing(access):
    out = run("--dry-run", *access.args)
    assert "BEGIN;" in out and "COMMIT;" in out
    assert f'CREATE ROLE "{access.login}" LOGIN' in out
    assert "PASSWORD :'metabase_password'" in out
    assert f'ALTER DEFAULT PRIVILEGES FOR ROLE "{connection.settings_dict["USER"]}"' in out
    assert access.password not in out
    assert not role_exists(access.login) and not role_exists(access.group)


def test_dry_run_and_revoke_need_no_password(access, monkeypatch):
    monkeypatch.delenv("METABASE_DB_PASSWORD")
    assert "CREATE ROLE" in run("--dry-run", *access.args)
    assert "nothing to change" in run("--revoke", *access.args)


def test_the_password_is_never_printed_logged_or_sent_in_clear(access, caplog):
    caplog.set_level("DEBUG")
    out = run(*access.args) + run("--dry-run", *access.args) + run("--check", *access.args)
    assert access.password not in out
    assert access.password not in caplog.text
    stored = fetch("SELECT rolpassword FROM pg_authid WHERE rolname = %(n)s", {"n": access.login})
    assert stored[0][0].startswith("SCRAM-SHA-256$")
    # The server saw a verifier, not the password: statements it recorded do not hold it.
    texts = fetch("SELECT query FROM pg_stat_statements WHERE query ILIKE '%%PASSWORD%%'")
    assert texts
    assert not [t for (t,) in texts if access.password in t]


def test_a_missing_password_is_a_one_line_error_and_changes_nothing(access, monkeypatch):
    monkeypatch.delenv("METABASE_DB_PASSWORD")
    with pytest.raises(CommandError, match="METABASE_DB_PASSWORD is not set") as info:
        run(*access.args)
    assert "\n" not in str(info.value)
    assert not role_exists(access.group)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--connection-limit", "0"], "connection limit must be between"),
        (["--connection-limit", "many"], "connection limit must be a whole number"),
        (["--statement-timeout", "soon"], "is not a duration"),
        (["--idle-in-transaction-timeout", "0"], "must be more than 0"),
        (["--login-role", "Metabase-RO"], "is not a plain role name"),
        (["--login-role", "pg_metabase"], "reserved by PostgreSQL"),
        (["--migration-role", "nobody_such_role"], "does not exist"),
    ],
)
def test_bad_options_are_one_line_errors_that_change_nothing(access, args, message):
    with pytest.raises(CommandError, match=message) as info:
        run(*access.args, *args)
    assert "\n" not in str(info.value)
    assert not role_exists(access.group)


def test_the_same_role_for_group_and_login_is_refused(access):
    with pytest.raises(CommandError, match="two different roles"):
        run("--group-role", access.login, "--login-role", access.login)


def test_an_existing_application_role_is_never_taken_over(access):
    with pytest.raises(CommandError, match="one of the roles it manages"):
        run("--group-role", access.group, "--login-role", connection.settings_dict["USER"])
    app_role = unique_name("app")
    execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(app_role)))
    try:
        execute(sql.SQL("CREATE TABLE core.mbt_owned (id integer)"))
        execute(sql.SQL("ALTER TABLE core.mbt_owned OWNER TO {}").format(sql.Identifier(app_role)))
        with pytest.raises(CommandError, match=r"owns table core\.mbt_owned") as info:
            run("--group-role", access.group, "--login-role", app_role)
        assert "looks like an application role" in str(info.value)
    finally:
        execute("DROP TABLE IF EXISTS core.mbt_owned")
        drop_roles(app_role)
    assert not role_exists(access.group)


def test_check_passes_on_a_correct_set_up_and_reports_each_boundary(granted):
    out = run("--check", *granted.args)
    assert "FAIL" not in out
    for expected in (
        "password authentication",
        f"is a member of {granted.group} only",
        "can SELECT from all",
        "information_schema.tables lists all",
        "a write is refused by default",
        "cannot INSERT, UPDATE, DELETE or TRUNCATE any of",
        "cannot CREATE in any of",
        "cannot SELECT from any of",
        "pg_stat_statements rows of other roles",
    ):
        assert expected in out
    assert "checks passed" in out


def test_check_fails_when_a_write_is_possible_and_passes_again_after_a_run(granted):
    execute(
        sql.SQL("GRANT INSERT, DELETE ON core.mcp_cache TO {}").format(
            sql.Identifier(granted.group)
        )
    )
    with pytest.raises(CommandError, match="checks failed"):
        run("--check", *granted.args)
    assert "revoke DELETE on core.mcp_cache" in run(*granted.args)
    assert "checks passed" in run("--check", *granted.args)


def test_check_fails_with_a_wrong_password(granted, monkeypatch):
    monkeypatch.setenv("METABASE_DB_PASSWORD", "not-the-password")
    import io

    out = io.StringIO()
    with pytest.raises(CommandError, match="checks failed"):
        call_command("metabase_access", "--check", *granted.args, stdout=out)
    assert "wrong password" in out.getvalue()
    assert "can log in as" not in out.getvalue()


# --- login failures, ownership, concurrency -------------------------------------------


def test_a_full_connection_limit_never_resets_the_password_and_check_says_why(access):
    run(*access.args, "--connection-limit", "1")
    verifier = catalog_state([access.login])["passwords"]
    with login(access):  # takes the only connection the role has
        out = run(*access.args, "--connection-limit", "1")
        assert "password not checked, left as it is (too many connections" in out
        assert "set the password" not in out
        assert catalog_state([access.login])["passwords"] == verifier
        import io

        text = io.StringIO()
        with pytest.raises(CommandError, match="checks failed"):
            call_command("metabase_access", "--check", *access.args, stdout=text)
        assert "too many connections (53300)" in text.getvalue()
        assert "the password was not touched" in text.getvalue()
    assert catalog_state([access.login])["passwords"] == verifier
    assert "nothing to change" in run(*access.args, "--connection-limit", "1")


def test_an_unchanged_password_is_never_set_again(granted):
    before = catalog_state([granted.login])["passwords"]
    for _ in range(2):
        assert "set the password" not in run(*granted.args)
    assert catalog_state([granted.login])["passwords"] == before


def test_a_temporary_table_of_a_live_session_never_blocks_a_rotation(granted, monkeypatch):
    with login(granted) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute("CREATE TEMPORARY TABLE mbt_scratch (id int)")
        new = secrets.token_urlsafe(18)
        monkeypatch.setenv("METABASE_DB_PASSWORD", new)
        out = run(*granted.args)
        assert f"set the password of {granted.login}" in out
        assert "mbt_scratch (temporary, ends with its session)" in out


def test_reassign_owned_to_gives_what_the_role_owns_away(granted):
    keeper = unique_name("keeper")
    execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(keeper)))
    try:
        oid = fetch("SELECT lo_from_bytea(0, '\\x01'::bytea)")[0][0]
        execute(
            sql.SQL("ALTER LARGE OBJECT {} OWNER TO {}").format(
                sql.Literal(oid), sql.Identifier(granted.login)
            )
        )
        out = run(*granted.args, "--reassign-owned-to", keeper)
        assert f"give what {granted.login} owns to {keeper}: large object {oid}" in out
        assert fetch(
            "SELECT lomowner::regrole::text FROM pg_largeobject_metadata WHERE oid = %(o)s",
            {"o": oid},
        ) == [(keeper,)]
        execute(sql.SQL("SELECT lo_unlink({})").format(sql.Literal(oid)))
    finally:
        drop_roles(keeper)


def _runs_at_once(access, count: int = 2) -> tuple[list[str], list[BaseException]]:
    import threading

    from django.db import connections

    errors_seen: list[BaseException] = []
    outputs: list[str] = []
    barrier = threading.Barrier(count)

    def one_run() -> None:
        try:
            barrier.wait()
            outputs.append(run(*access.args))
        except BaseException as exc:
            errors_seen.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one_run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return outputs, errors_seen


def test_two_runs_at_once_are_serialized(monkeypatch):
    for _ in range(3):
        with metabase_roles(monkeypatch) as access:
            outputs, errors_seen = _runs_at_once(access)
            assert errors_seen == []
            # One created the roles; the other waited, then found nothing to change.
            assert sorted("nothing to change" in out for out in outputs) == [False, True]


def test_memberships_and_settings_in_other_databases_are_taken_back(granted):
    other = unique_name("member")
    execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(other)))
    try:
        execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(granted.group), sql.Identifier(other))
        )
        execute(
            sql.SQL("ALTER ROLE {} IN DATABASE postgres SET work_mem = '2GB'").format(
                sql.Identifier(granted.login)
            )
        )
        execute(
            sql.SQL("ALTER ROLE {} SET temp_file_limit = -1").format(sql.Identifier(granted.login))
        )
        out = run(*granted.args)
        assert f"revoke membership of {other} in {granted.group}" in out
        assert f"reset work_mem = 2GB set for {granted.login} in database postgres" in out
        assert f"reset temp_file_limit = -1 set for {granted.login} (not declared)" in out
        assert fetch(
            "SELECT count(*) FROM pg_db_role_setting WHERE setrole = %(r)s::regrole "
            "AND setdatabase <> 0",
            {"r": granted.login},
        ) == [(0,)]
        assert "checks passed" in run("--check", *granted.args)
    finally:
        drop_roles(other)
