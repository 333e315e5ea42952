"""The boundary as Metabase meets it: the real PostgreSQL JDBC driver, logged in as the role.

Every attack from Metabase's SQL editor runs as a native question (autocommit,
``setReadOnly(true)``, which the driver ignores in autocommit). Each must either fail
(SQLSTATE checked), or be named by ``--check`` and undone by a rerun or the watchdog;
what no grant can stop (a session's own USERSET parameters) is shown to end with the
session. The catalog, read on the test's own connection, is the independent answer.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from psycopg import sql

from tests.metabase.jdbc_support import probe
from tests.metabase.support import execute, fetch, metabase_roles, relations, run

# metabase_access creates and alters roles: the instance's administrator, here the
# cluster's superuser, by name (tests/db/roles.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_superuser"),
]

DENIED = "42501"  # insufficient_privilege


@pytest.fixture
def granted(monkeypatch):
    with metabase_roles(monkeypatch) as access:
        run(*access.args)
        yield access


def ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def check_fails_naming(access, *needles: str) -> str:
    """--check exits 1 and its output names every needle; the output."""
    import io

    out = io.StringIO()
    with pytest.raises(CommandError, match="checks failed"):
        call_command("metabase_access", "--check", *access.args, stdout=out)
    text = out.getvalue()
    for needle in needles:
        assert needle in text, text
    return text


def check_passes(access) -> str:
    out = run("--check", *access.args)
    assert "checks passed" in out, out
    return out


# --- Metabase's sync ------------------------------------------------------------------


def test_sync_lists_and_reads_every_table_view_and_materialized_view_of_analytics_and_core(
    granted,
):
    execute("CREATE MATERIALIZED VIEW analytics.mbt_sessions_mv AS SELECT 1 AS one")
    try:
        run(*granted.args)
        (sync,) = probe(granted, "#sync analytics,core")
        listed = {(t["schema"], t["name"]): t for t in sync["tables"]}
        expected = set(relations(["analytics", "core"], "rvmp"))
        assert set(listed) == expected
        assert listed[("analytics", "mbt_sessions_mv")]["type"] == "MATERIALIZED VIEW"
        assert all(t["readable"] for t in listed.values()), [
            t for t in listed.values() if not t["readable"]
        ]
        # Columns as the catalog counts them.
        for (schema, name), table in listed.items():
            (count,) = fetch(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = %(r)s::regclass "
                "AND attnum > 0 AND NOT attisdropped",
                {"r": sql.Identifier(schema, name).as_string(connection.connection)},
            )[0]
            assert table["columns"] == count, (schema, name)
        assert listed[("core", "projects")]["primary_keys"] == 1
        # A materialized view is handled: --check passes with it.
        assert "materialized view(s) listed" in check_passes(granted)
    finally:
        execute("DROP MATERIALIZED VIEW IF EXISTS analytics.mbt_sessions_mv")


def test_sync_sees_the_names_in_auth_and_audit_but_reads_none_of_them(granted):
    (sync,) = probe(granted, "#sync auth,audit")
    assert {"auth", "audit", "analytics", "core"} <= set(sync["schemas"])
    listed = {(t["schema"], t["name"]) for t in sync["tables"]}
    # The catalogs are readable by every role (documented): names and columns show.
    assert set(relations(["auth", "audit"], "rvmp")) == listed
    assert {t["sqlstate"] for t in sync["tables"]} == {DENIED}
    assert not any(t["readable"] for t in sync["tables"])


# --- native questions: what must fail -------------------------------------------------


ATTACKS = (
    "SELECT * FROM auth.users",
    "SELECT * FROM audit.activity_logs",
    "SET TRANSACTION READ WRITE; SELECT lo_from_bytea(0, '\\x0102'::bytea)",
    "SET TRANSACTION READ WRITE; SELECT lo_create(0)",
    "SET TRANSACTION READ WRITE; SELECT lo_creat(-1)",
    "SELECT pg_read_file('postgresql.conf')",
    "SELECT pg_ls_dir('.')",
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "SET TRANSACTION READ WRITE; DELETE FROM core.projects",
    "SET TRANSACTION READ WRITE; CREATE TABLE core.mbt_probe (id int)",
    "SET TRANSACTION READ WRITE; CREATE TABLE public.mbt_probe (id int)",
    "SELECT public.pg_stat_statements_reset()",
    "SET session_replication_role = replica",
    "SET TRANSACTION READ WRITE; ALTER ROLE CURRENT_USER SET temp_file_limit = -1",
    "SET TRANSACTION READ WRITE; ALTER ROLE CURRENT_USER CONNECTION LIMIT -1",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename <> current_user",
)


def test_every_editor_attack_is_refused_for_lack_of_privilege(granted):
    lo_before = fetch("SELECT count(*) FROM pg_largeobject_metadata")
    results = probe(granted, *ATTACKS)
    for question, result in zip(ATTACKS, results, strict=True):
        assert result["ok"] is False, (question, result)
        assert result["sqlstate"] == DENIED, (question, result)
    assert fetch("SELECT count(*) FROM pg_largeobject_metadata") == lo_before
    assert fetch("SELECT to_regclass('core.mbt_probe'), to_regclass('public.mbt_probe')") == [
        (None, None)
    ]


def test_the_role_cannot_log_in_to_the_maintenance_databases(granted):
    for database in ("postgres", "template1"):
        (result,) = probe(granted, "SELECT 1", database=database)
        assert result["ok"] is False
        assert result["sqlstate"] == DENIED, result  # permission denied for database


# --- what a session may change for itself, and what undoes it ------------------------


def test_session_settings_the_editor_changes_end_with_the_connection(granted):
    results = probe(
        granted,
        "SELECT set_config('statement_timeout', '0', false)",
        "SET work_mem = '1GB'",
        "SELECT current_setting('statement_timeout'), current_setting('work_mem')",
        "#reconnect",
        "SELECT current_setting('statement_timeout'), current_setting('work_mem'), "
        "current_setting('default_transaction_read_only')",
    )
    assert results[0]["ok"] and results[1]["ok"]
    # USERSET: no grant can stop it, for this connection (the watchdog bounds it).
    assert results[2]["rows"] == [["0", "1GB"]]
    (fresh,) = results[4]["rows"]
    assert (fresh[0], fresh[2]) == ("1min", "on")
    assert fresh[1] != "1GB"


def test_settings_the_role_gives_itself_are_named_by_check_and_reset_by_a_rerun(granted):
    results = probe(
        granted,
        "SET TRANSACTION READ WRITE; ALTER ROLE CURRENT_USER SET statement_timeout = 0",
        "SET TRANSACTION READ WRITE; ALTER ROLE CURRENT_USER SET work_mem = '1GB'",
        "SET TRANSACTION READ WRITE; "
        f"ALTER ROLE CURRENT_USER IN DATABASE {connection.settings_dict['NAME']} "
        "SET default_transaction_read_only = off",
        "#reconnect",
        "SELECT current_setting('statement_timeout'), current_setting('work_mem')",
    )
    assert all(r["ok"] for r in results), results
    assert results[4]["rows"] == [["0", "1GB"]]  # the attack took, for new sessions

    check_fails_naming(
        granted,
        "set statement_timeout = 60000 ms",
        "reset work_mem = 1GB",
        "reset default_transaction_read_only = off",
    )
    run(*granted.args)
    (after,) = probe(
        granted,
        "SELECT current_setting('statement_timeout'), current_setting('work_mem') <> '1GB', "
        "current_setting('default_transaction_read_only')",
    )
    assert after["rows"] == [["1min", "t", "on"]]
    check_passes(granted)


# --- grants someone else made: named by --check, taken back by a rerun ----------------


@pytest.mark.parametrize(
    ("grant", "question", "named"),
    [
        (
            "GRANT EXECUTE ON FUNCTION pg_read_file(text) TO {group}",
            "SELECT length(pg_read_file('postgresql.conf')) > 0",
            "revoke EXECUTE on routine pg_catalog.pg_read_file(text)",
        ),
        (
            "GRANT SET ON PARAMETER session_replication_role TO {group}",
            "SET session_replication_role = replica",
            "revoke SET on parameter session_replication_role",
        ),
        (
            "GRANT EXECUTE ON FUNCTION public.pg_stat_statements_reset TO {group}",
            "SELECT public.pg_stat_statements_reset() IS NOT NULL",
            "revoke EXECUTE on routine public.pg_stat_statements_reset(",
        ),
        (
            "GRANT SELECT ON auth.users TO PUBLIC; GRANT USAGE ON SCHEMA auth TO PUBLIC",
            "SELECT count(*) FROM auth.users",
            "revoke SELECT on auth.users from PUBLIC",
        ),
        (
            "GRANT SELECT ON auth.users TO {group}",  # dormant: no USAGE on auth
            None,
            "holds SELECT on auth.users",
        ),
        (
            "GRANT EXECUTE ON FUNCTION lo_from_bytea(oid, bytea) TO PUBLIC",
            "SET TRANSACTION READ WRITE; SELECT lo_from_bytea(0, '\\x01'::bytea) > 0",
            "lo_from_bytea",
        ),
        (
            "GRANT CONNECT, TEMPORARY ON DATABASE postgres TO {login}",
            None,
            "revoke CONNECT on database postgres",
        ),
        (
            "GRANT pg_read_server_files TO {group}",
            None,
            "revoke membership of {group} in pg_read_server_files",
        ),
        (
            "CREATE ROLE {group}_extra; GRANT {login} TO {group}_extra",
            None,
            "revoke membership of {group}_extra in {login}",
        ),
    ],
    ids=[
        "pg_read_file",
        "set-parameter",
        "pg_stat_statements_reset",
        "public-grant",
        "dormant-grant",
        "public-lo-function",
        "other-database",
        "server-files-role",
        "member-of-login",
    ],
)
def test_a_grant_made_behind_its_back_is_named_by_check_and_revoked_by_a_rerun(
    granted, grant, question, named
):
    names = {"group": granted.group, "login": granted.login}
    for statement in grant.format(**names).split("; "):
        execute(statement)
    try:
        if question:
            (before,) = probe(granted, question)
            assert before["ok"], before  # the grant is effective: the attack works
        check_fails_naming(granted, named.format(**names))
        # The large object the attack made is the role's: --drop-owned takes it too.
        extra = ["--drop-owned"] if "lo_from_bytea" in grant else []
        out = run(*granted.args, *extra)
        assert named.format(**names) in out or not named.startswith("revoke")
        check_passes(granted)
        if question:
            (after,) = probe(granted, question)
            assert after["ok"] is False and after["sqlstate"] == DENIED, after
    finally:
        execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident(f"{granted.group}_extra")))
        execute("SELECT lo_unlink(oid) FROM pg_largeobject_metadata")


def test_a_view_over_auth_is_never_granted_and_check_names_it(granted):
    # As a migration would: the migration role's default privileges grant SELECT at once.
    execute("CREATE VIEW analytics.mbt_people AS SELECT email, password FROM auth.users")
    execute("CREATE VIEW core.mbt_people_again AS SELECT email FROM analytics.mbt_people")
    execute(
        "CREATE MATERIALIZED VIEW analytics.mbt_audit_mv AS SELECT count(*) AS n "
        "FROM audit.activity_logs"
    )
    try:
        (before,) = probe(granted, "SELECT count(*) FROM analytics.mbt_people")
        assert before["ok"], "default privileges granted it: the attack of a bad migration"
        check_fails_naming(
            granted,
            "view analytics.mbt_people (reads auth.users)",
            "view core.mbt_people_again (reads auth.users)",
            "materialized view analytics.mbt_audit_mv (reads audit.activity_logs)",
        )
        out = run(*granted.args)
        assert "not granted: view analytics.mbt_people" in out
        revoked = f"revoke SELECT on analytics.mbt_people from {granted.group}"  # noqa: S608
        assert revoked in out
        for view in ("analytics.mbt_people", "core.mbt_people_again", "analytics.mbt_audit_mv"):
            (result,) = probe(granted, "SELECT * FROM " + view)  # noqa: S608 - fixed names
            assert result["sqlstate"] == DENIED, (view, result)
        # A second run does not grant it back, and --check keeps naming it.
        assert "grant SELECT on analytics.mbt_people" not in run(*granted.args)
        check_fails_naming(granted, "analytics.mbt_people")
    finally:
        execute("DROP VIEW IF EXISTS core.mbt_people_again")
        execute("DROP VIEW IF EXISTS analytics.mbt_people")
        execute("DROP MATERIALIZED VIEW IF EXISTS analytics.mbt_audit_mv")
    check_passes(granted)


# --- ownership and rotation -----------------------------------------------------------


def test_a_large_object_the_role_made_never_blocks_a_rotation_and_the_watchdog_unlinks_it(
    granted, monkeypatch
):
    import secrets

    execute("GRANT EXECUTE ON FUNCTION lo_from_bytea(oid, bytea) TO PUBLIC")
    (made,) = probe(granted, "SET TRANSACTION READ WRITE; SELECT lo_from_bytea(0, '\\x01'::bytea)")
    assert made["ok"], made
    oid = int(made["rows"][0][0])
    assert fetch(
        "SELECT lomowner::regrole::text FROM pg_largeobject_metadata WHERE oid = %(o)s",
        {"o": oid},
    ) == [(granted.login,)]
    check_fails_naming(granted, f"owns large object {oid}")

    new = secrets.token_urlsafe(18)
    monkeypatch.setenv("METABASE_DB_PASSWORD", new)
    out = run(*granted.args)
    assert f"set the password of {granted.login}" in out
    assert f"owns large object {oid}" in out  # reported, not refused
    granted = type(granted)(granted.group, granted.login, new)

    out = _watchdog(granted)
    assert f"unlinked large object {oid} owned by {granted.login}" in out
    assert fetch("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %(o)s", {"o": oid}) == [
        (0,)
    ]
    check_passes(granted)


def _watchdog(access) -> str:
    import io

    out = io.StringIO()
    call_command("metabase_watchdog", *access.args, stdout=out)
    return out.getvalue()
