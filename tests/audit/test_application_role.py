"""The promise from outside: the suite's own connection is the application role, and as
that role every way of rewriting the audit trail is refused.

The suite connects as the role the web service uses (tests/db/roles.py); the first test
keeps it so: were the settings or the fixtures to drift back to the superuser or to the
migrator, it fails. The statements are the ones an operator with the web service's
credentials would try; each must end in ``permission denied`` (SQLSTATE 42501), the
rows and the guard triggers untouched (read back from the catalog as the superuser).
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from audit.append_only import ARCHIVE_TRIGGERS, TRIGGERS
from audit.services import record_activity, record_security_event
from tests.db import roles

INSUFFICIENT_PRIVILEGE = "42501"


def fetch(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def test_the_suite_connects_as_the_application_role(db):
    app = roles.role_name(roles.APPLICATION)
    migrator = roles.role_name(roles.MIGRATOR)
    row = fetch(
        "SELECT current_user, session_user, r.rolsuper, r.rolcreaterole, r.rolcreatedb, "
        "       r.rolbypassrls, pg_has_role(current_user, %s, 'MEMBER') "
        "  FROM pg_roles r WHERE r.rolname = current_user",
        [migrator],
    )
    assert row == [(app, app, False, False, False, False, False)]
    # Owns nothing of the project's schemas.
    owned = fetch(
        "SELECT c.oid::regclass::text FROM pg_class c"
        "  JOIN pg_namespace n ON n.oid = c.relnamespace"
        "  JOIN pg_roles r ON r.oid = c.relowner AND r.rolname = current_user"
        " WHERE n.nspname IN ('public', 'auth', 'core', 'analytics', 'audit')"
        " UNION ALL SELECT n.nspname::text FROM pg_namespace n"
        "  JOIN pg_roles r ON r.oid = n.nspowner AND r.rolname = current_user"
    )
    assert owned == []


def _tampering(table: str) -> list[tuple[str, sql.Composable]]:
    ident = sql.Identifier("audit", table)
    rewrite, truncate = TRIGGERS[f'audit"."{table}']
    return [
        ("DISABLE TRIGGER ALL", sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(ident)),
        (
            "DISABLE TRIGGER one",
            sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(ident, sql.Identifier(rewrite)),
        ),
        (
            "DROP TRIGGER",
            sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(truncate), ident),
        ),
        (
            "UPDATE pg_trigger",
            sql.SQL(
                "UPDATE pg_catalog.pg_trigger SET tgenabled = 'D' WHERE tgrelid = {}::regclass"
            ).format(sql.Literal(f"audit.{table}")),
        ),
        ("RENAME", sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident, sql.Identifier("moved"))),
        ("DROP TABLE", sql.SQL("DROP TABLE {}").format(ident)),
        ("DELETE", sql.SQL("DELETE FROM {}").format(ident)),
        ("UPDATE", sql.SQL("UPDATE {} SET id = id").format(ident)),
        ("TRUNCATE", sql.SQL("TRUNCATE {}").format(ident)),
        (
            "session_replication_role",
            sql.SQL("SET LOCAL session_replication_role = replica"),
        ),
        (
            "ALTER FUNCTION",
            sql.SQL("ALTER FUNCTION audit.refuse_audit_rewrite() RENAME TO gone"),
        ),
    ]


def _guard_state(table: str) -> tuple[int, list[tuple[str, str]]]:
    """(row count, [(trigger, tgenabled)]) of ``audit.<table>``, read as the superuser."""
    with psycopg.connect(**roles.superuser_params()) as conn:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("audit", table))
        ).fetchone()
        triggers = conn.execute(
            "SELECT tgname, tgenabled::text FROM pg_trigger "
            "WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY 1",
            [f"audit.{table}"],
        ).fetchall()
    assert count is not None
    return count[0], triggers


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("table", ["activity_logs", "security_events"])
def test_every_tampering_statement_is_refused_to_the_application_role(table):
    record_activity(action="test", resource_type="tests.thing", resource_id="1")
    record_security_event(event_type="logout")
    before = _guard_state(table)
    assert before[0] >= 1
    expected = {name for name in TRIGGERS[f'audit"."{table}']} | {ARCHIVE_TRIGGERS[table]}
    assert {name for name, enabled in before[1] if enabled == "A"} >= expected

    refusals = {}
    for what, statement in _tampering(table):
        with (
            pytest.raises(DatabaseError) as caught,
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
        cause = caught.value.__cause__
        refusals[what] = getattr(cause, "sqlstate", None)
    assert refusals == {what: INSUFFICIENT_PRIVILEGE for what, _ in _tampering(table)}
    assert _guard_state(table) == before
