"""``db_roles``: the declared roles on the real cluster, what each may do, and bad input.

Each test runs in the test's transaction (roles, ownership and grants roll back with
it) and uses role names of its own (the declaration reads them from the environment),
so nothing is left in the cluster.
"""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from dbroles import declaration
from dbroles.declaration_plan import MARKER, plan_roles

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-and-security.md"


@pytest.fixture
def names(monkeypatch, default_as_superuser) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    chosen = {
        "migrator": f"t_migrator_{suffix}",
        "application": f"t_app_{suffix}",
        "monitoring": f"t_monitor_{suffix}",
    }
    monkeypatch.setenv("DB_MIGRATOR_ROLE", chosen["migrator"])
    monkeypatch.setenv("DB_APP_ROLE", chosen["application"])
    monkeypatch.setenv("DB_MONITOR_ROLE", chosen["monitoring"])
    monkeypatch.setenv("DB_MIGRATOR_PASSWORD", "migrator-" + suffix + "-pw")
    monkeypatch.setenv("DB_APP_PASSWORD", "application-" + suffix + "-pw")
    return chosen


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("db_roles", *args, stdout=out)
    return out.getvalue()


def execute(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def role_exists(name: str) -> bool:
    return bool(execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]))


def as_role(name: str):
    class Role:
        def __enter__(self):
            execute(sql.SQL("SET ROLE {}").format(sql.Identifier(name)))

        def __exit__(self, *exc):
            execute("RESET ROLE")

    return Role()


def refused(statement, match: str) -> None:
    with pytest.raises(DatabaseError, match=match), transaction.atomic():
        execute(statement)


def test_the_docs_table_is_the_declaration():
    assert declaration.markdown() in DOC.read_text()


def test_apply_then_replan_is_empty_and_check_passes(names, monkeypatch):
    with pytest.raises(CommandError) as caught:
        run("--check")
    assert caught.value.returncode == 1
    out = run()
    assert re.search(r": \d+ changes?\b", out)
    # Without the variables the passwords are left as they are. (With them, a re-run
    # logs in to see whether they still work: a login this uncommitted test
    # transaction's new roles cannot make.)
    monkeypatch.delenv("DB_MIGRATOR_PASSWORD")
    monkeypatch.delenv("DB_APP_PASSWORD")
    assert run().strip().endswith("nothing to change.")
    assert "roles as declared" in run("--check")
    assert plan_roles(connection.connection, check_passwords=False).changes == []
    # the catalog agrees: the migrator owns every table of the project's schemas
    owners = execute(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')",
        [list(declaration.SCHEMAS)],
    )
    assert owners == [(names["migrator"],)]
    comment = execute(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
        [names["application"]],
    )
    assert comment == [(MARKER + "application",)]


def test_the_application_role_writes_data_adds_audit_rows_and_nothing_more(names):
    run()
    app = names["application"]
    with as_role(app):
        execute("INSERT INTO auth.companies (id, name, domain) VALUES (gen_random_uuid(), 'x', '')")
        execute(
            "INSERT INTO audit.activity_logs (id, action, actor_email, resource_type,"
            " resource_id, object_repr, user_agent, request_id) VALUES"
            " (gen_random_uuid(), 'as app', '', '', '', '', '', '')"
        )
        for statement, match in [
            ("UPDATE audit.activity_logs SET action = 'x'", "permission denied"),
            ("DELETE FROM audit.security_events", "permission denied"),
            ("TRUNCATE audit.activity_logs", "permission denied"),
            ("ALTER TABLE audit.activity_logs DISABLE TRIGGER ALL", "must be owner"),
            ("DROP TRIGGER activity_logs_no_rewrite ON audit.activity_logs", "must be owner"),
            ("DROP TABLE audit.activity_logs", "must be owner"),
            ("ALTER TABLE auth.companies ADD COLUMN x int", "must be owner"),
            ("CREATE TABLE core.mine (id int)", "permission denied"),
        ]:
            refused(statement, match)
    owned = execute(
        "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles"
        " WHERE rolname = %s)",
        [app],
    )
    assert owned == [(0,)]
    assert execute("SELECT pg_has_role(%s, 'pg_monitor', 'USAGE')", [app]) == [(True,)]


def test_tables_the_migrator_creates_later_get_the_declared_grants(names):
    run()
    with as_role(names["migrator"]):
        execute("CREATE TABLE core.later (id int)")
        execute("CREATE TABLE audit.later (id int)")
    grants = dict(
        execute(
            "SELECT table_schema, string_agg(privilege_type, ',' ORDER BY privilege_type)"
            " FROM information_schema.role_table_grants WHERE grantee = %s"
            " AND table_name = 'later' GROUP BY 1",
            [names["application"]],
        )
    )
    assert grants == {"core": "DELETE,INSERT,SELECT,UPDATE", "audit": "INSERT,SELECT"}


def test_dry_run_prints_a_psql_script_without_passwords_and_changes_nothing(names, monkeypatch):
    out = run("--dry-run")
    assert "BEGIN;" in out and "COMMIT;" in out
    assert ":'application_password'" in out
    assert "application-" not in out  # the password itself
    assert not role_exists(names["application"])


def test_a_missing_password_is_one_line_and_nothing_is_applied(names, monkeypatch):
    monkeypatch.delenv("DB_APP_PASSWORD")
    with pytest.raises(CommandError) as caught:
        run()
    assert "DB_APP_PASSWORD is not set" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not role_exists(names["migrator"])  # planned first, never run


def test_a_short_password_is_refused(names, monkeypatch):
    monkeypatch.setenv("DB_APP_PASSWORD", "short")
    with pytest.raises(CommandError, match="at least 12 characters"):
        run()
    assert not role_exists(names["migrator"])


def test_a_role_that_exists_but_is_not_ours_is_refused_unless_adopted(names, monkeypatch):
    execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(names["application"])))
    with pytest.raises(CommandError, match="was not created by db_roles"):
        run()
    assert not role_exists(names["migrator"])
    run("--adopt")
    monkeypatch.delenv("DB_MIGRATOR_PASSWORD")  # (see the test of a re-run above)
    monkeypatch.delenv("DB_APP_PASSWORD")
    assert "roles as declared" in run("--check")


def test_a_user_who_may_not_create_roles_is_told_about_cloudsqlsuperuser(names):
    weak = f"t_weak_{uuid.uuid4().hex[:8]}"
    execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(weak)))
    with as_role(weak), pytest.raises(CommandError, match="cloudsqlsuperuser"):
        run()


def test_a_bad_flag_is_one_line_and_non_zero():
    with pytest.raises(CommandError, match="unrecognized arguments"):
        call_command("db_roles", "--nope")
