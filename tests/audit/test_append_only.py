"""The audit tables refuse UPDATE, DELETE and TRUNCATE, through the ORM and raw SQL."""

import io

import pytest
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from audit import chain
from audit.append_only import ARCHIVE_TRIGGERS, TRIGGERS
from audit.models import ActivityLog, SecurityEvent
from audit.services import record_activity, record_security_event

TABLES = [sql.Identifier("audit", "activity_logs"), sql.Identifier("audit", "security_events")]

# The triggers refuse even the superuser (replica mode included), so these run as the
# superuser, by name (tests/db/roles.py); the application role is refused earlier, by
# its privileges (tests/audit/test_application_role.py).
pytestmark = pytest.mark.usefixtures("default_as_superuser")


def refused(fn) -> str:
    """Run fn in a savepoint; it must fail with the append-only error. Returns the message."""
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        fn()
    assert "append-only" in str(caught.value)
    return str(caught.value)


def execute(statement: str | sql.Composable, **identifiers: sql.Identifier) -> None:
    if identifiers:
        assert isinstance(statement, str)  # a template to format
        statement = sql.SQL(statement).format(**identifiers)
    with connection.cursor() as cursor:
        cursor.execute(statement)


@pytest.fixture
def rows(db):
    entry = record_activity(action="test", resource_type="tests.thing", resource_id="1")
    event = record_security_event(event_type=SecurityEvent.EventType.LOGOUT)
    return entry, event


def test_orm_update_of_an_activity_entry_is_refused(rows):
    entry, _ = rows
    entry.action = "forged"
    refused(entry.save)
    refused(lambda: ActivityLog.objects.filter(pk=entry.pk).update(action="forged"))
    assert ActivityLog.objects.get(pk=entry.pk).action == "test"


def test_orm_delete_of_audit_rows_is_refused(rows):
    entry, event = rows
    refused(entry.delete)
    refused(event.delete)
    refused(lambda: ActivityLog.objects.all().delete())
    refused(lambda: SecurityEvent.objects.all().delete())
    assert ActivityLog.objects.filter(pk=entry.pk).exists()
    assert SecurityEvent.objects.filter(pk=event.pk).exists()


def test_orm_update_of_a_security_event_is_refused(rows):
    _, event = rows
    refused(lambda: SecurityEvent.objects.filter(pk=event.pk).update(email_attempted="x"))


@pytest.mark.parametrize("table", TABLES, ids=["activity_logs", "security_events"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {t} SET user_agent = 'forged'",
        "DELETE FROM {t}",
        "TRUNCATE {t}",
        "UPDATE {t} SET user_agent = 'x' WHERE false",  # even when no row matches
    ],
)
def test_raw_sql_rewrites_are_refused(rows, table, statement):
    message = refused(lambda: execute(statement, t=table))
    assert "is not allowed" in message


@pytest.mark.parametrize("table", TABLES, ids=["activity_logs", "security_events"])
def test_replica_mode_does_not_bypass_the_triggers(rows, table):
    # session_replication_role = replica skips ordinary triggers (restores use it);
    # these are ENABLE ALWAYS. The test database role is a superuser, so SET works.
    def rewrite():
        execute("SET LOCAL session_replication_role = replica")
        execute("DELETE FROM {t}", t=table)

    refused(rewrite)


def test_inserting_still_works(rows):
    assert ActivityLog.objects.count() >= 1
    record_activity(action="another")
    assert ActivityLog.objects.filter(action="another").count() == 1


def test_the_triggers_exist_and_always_fire(db):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, t.tgname, t.tgenabled
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'audit' AND NOT t.tgisinternal
            """
        )
        found = {(table, name): enabled for table, name, enabled in cursor.fetchall()}
    expected = {
        (table.split('"."')[1], name): "A" for table, names in TRIGGERS.items() for name in names
    } | {(table, name): "A" for table, name in [*chain.TRIGGERS.items(), *ARCHIVE_TRIGGERS.items()]}
    assert found == expected


def test_the_production_backend_flush_does_not_touch_the_triggers(db):
    from portal.db.base import DatabaseWrapper

    production = DatabaseWrapper(connection.settings_dict)
    sql = production.ops.sql_flush(no_style(), list(TRIGGERS), reset_sequences=False)
    assert not any("DISABLE TRIGGER" in s for s in sql)


@pytest.mark.django_db(transaction=True)
def test_the_test_suite_flush_empties_the_audit_tables_and_reenables_the_guard():
    record_activity(action="flushed")
    out = io.StringIO()
    call_command("sqlflush", stdout=out)
    assert "DISABLE TRIGGER" in out.getvalue()
    call_command("flush", interactive=False, verbosity=0)
    assert not ActivityLog.objects.filter(action="flushed").exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = 'audit'::regnamespace AND NOT t.tgisinternal "
            "AND t.tgenabled <> 'A'"
        )
        assert cursor.fetchone()[0] == 0
    with pytest.raises(DatabaseError, match="append-only"):
        execute('TRUNCATE "audit"."activity_logs"')
