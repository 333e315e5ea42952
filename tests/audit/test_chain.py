"""The audit hash chain: built by PostgreSQL, checked by ``audit.chain``, anchored outside.

The attacks are the ones an operator could try with the access each role has:
- a role that may only INSERT and SELECT (the application): a forged row with its own
  ``created_at`` and chain columns, and every statement that would switch the guard off;
- the table owner (a plain role that owns the tables and the trigger functions, as the
  migrator does) and the cluster's superuser: they can switch the triggers off, so each
  tampering succeeds in the database and the verifier must name the broken row; a full
  rewrite that recomputes the chain is caught by the anchor written before it.

Each test runs in the test's transaction (roles and ownership changes roll back with it).
"""

from __future__ import annotations

import datetime
from typing import Any, TypeVar

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from audit import chain
from audit.models import ActivityLog, SecurityEvent
from audit.services import record_activity, record_security_event
from tests.diagnostics.support import connect

T = TypeVar("T")
ACTIVITY = sql.Identifier("audit", "activity_logs")
EVENTS = sql.Identifier("audit", "security_events")
# Each attack as the role it names, switched to with SET ROLE from a superuser session:
# the test's default connection is the superuser's here, by name (tests/db/roles.py).
pytestmark = pytest.mark.usefixtures("default_as_superuser")

OWNER = "test_audit_owner"
APP = "test_audit_app"
OLD = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


def execute(statement: Any, params=None, **identifiers) -> list[tuple]:
    if identifiers:
        statement = sql.SQL(statement).format(**identifiers)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def refused(statement: str | sql.Composable, match: str, **identifiers) -> None:
    with pytest.raises(DatabaseError, match=match), transaction.atomic():
        execute(statement, **identifiers)


def required(value: T | None) -> T:
    assert value is not None
    return value


def entries(n: int, prefix: str = "entry") -> list[ActivityLog]:
    return [required(record_activity(action=f"{prefix}-{i}", resource_id=i)) for i in range(n)]


def seq_of(entry: ActivityLog) -> int:
    return required(ActivityLog.objects.values_list("chain_seq", flat=True).get(pk=entry.pk))


@pytest.fixture
def storage(tmp_path) -> FileSystemStorage:
    return FileSystemStorage(location=tmp_path)


@pytest.fixture
def as_owner(db):
    """A plain (not superuser) role that owns both audit tables and their chain functions."""
    execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(OWNER)))
    execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA audit TO {}").format(sql.Identifier(OWNER)))
    for table in chain.TABLES:
        execute(
            sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                sql.Identifier("audit", table), sql.Identifier(OWNER)
            )
        )
        execute(
            sql.SQL("ALTER FUNCTION {}() OWNER TO {}").format(
                sql.Identifier("audit", f"chain_{table}"), sql.Identifier(OWNER)
            )
        )

    class Owner:
        def __enter__(self):
            execute(sql.SQL("SET ROLE {}").format(sql.Identifier(OWNER)))

        def __exit__(self, *exc):
            execute("RESET ROLE")

    return Owner()


@pytest.fixture
def as_app(db):
    """A role that may only INSERT and SELECT in schema audit (the application's rights)."""
    role = sql.Identifier(APP)
    execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
    execute(sql.SQL("GRANT USAGE ON SCHEMA audit TO {}").format(role))
    execute(sql.SQL("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA audit TO {}").format(role))

    class App:
        def __enter__(self):
            execute(sql.SQL("SET ROLE {}").format(role))

        def __exit__(self, *exc):
            execute("RESET ROLE")

    return App()


def broken() -> chain.Problem:
    result = chain.verify(check_anchor=False)
    assert result.problem is not None, "the verifier found nothing"
    return result.problem


# --- the chain as the database builds it -------------------------------------------


def test_the_database_sets_created_at_and_the_chain_whatever_the_client_sends(db):
    first, second = entries(2)
    forged = ActivityLog.objects.create(
        action="forged", created_at=OLD, chain_seq=1, prev_hash=b"x", row_hash=b"y"
    )
    rows: list[Any] = list(
        ActivityLog.objects.filter(pk__in=[first.pk, second.pk, forged.pk])
        .order_by("chain_seq")
        .values("pk", "chain_seq", "prev_hash", "row_hash", "created_at")
    )
    assert [r["pk"] for r in rows] == [first.pk, second.pk, forged.pk]
    assert [r["chain_seq"] for r in rows] == [rows[0]["chain_seq"] + i for i in range(3)]
    assert bytes(rows[1]["prev_hash"]) == bytes(rows[0]["row_hash"])
    assert bytes(rows[2]["prev_hash"]) == bytes(rows[1]["row_hash"])
    assert rows[2]["created_at"] > OLD and rows[2]["created_at"] >= rows[1]["created_at"]
    # the instance carries the database's time, not the one it sent
    assert forged.created_at == rows[2]["created_at"]
    result = chain.verify(check_anchor=False)
    assert result.ok, result.problem
    assert result.heads["activity_logs"].seq == ActivityLog.objects.count()
    assert result.rows["activity_logs"] == ActivityLog.objects.count()


def test_the_first_row_links_to_the_genesis_hash_and_seq_counts_the_rows(db):
    entries(3)
    record_security_event(event_type=SecurityEvent.EventType.LOGOUT)
    for model in (ActivityLog, SecurityEvent):
        seqs = list(model.objects.order_by("chain_seq").values_list("chain_seq", flat=True))
        assert seqs == list(range(1, model.objects.count() + 1))
        first = model.objects.get(chain_seq=1)
        assert bytes(required(first.prev_hash)) == chain.GENESIS


def test_bulk_inserts_chain_row_by_row(db):
    from audit.services import record_activities

    rows = record_activities({"action": f"bulk-{i}"} for i in range(5))
    seqs = sorted(seq_of(r) for r in rows)
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    assert chain.verify(check_anchor=False).ok


def test_the_python_hash_is_the_database_hash_for_awkward_content(db):
    record_activity(
        action="unicode",
        object_repr="Zoë — 東京 \U0001f600 ;S3:x;N;",
        details={"b": [1, 2.5, None, True], "a": {"nested": '\n\t"q"'}, "n": 10**20},
        resource_id="",
    )
    record_security_event(
        event_type="login_failure", email_attempted="x@example.com", ip_address="2001:db8::1"
    )
    assert chain.verify(check_anchor=False).ok


def test_a_transaction_that_is_not_read_committed_cannot_insert(db):
    # A second connection, outside the test's transaction, so its isolation can be set.
    with connect(autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(Exception, match="READ COMMITTED"):
            conn.execute(
                "INSERT INTO audit.activity_logs (id, action) VALUES (gen_random_uuid(), 'x')"
            )
        conn.rollback()


# --- the application's rights: refused -----------------------------------------------


def test_the_application_role_cannot_switch_the_guard_off(as_app):
    entries(2)
    with as_app:
        for statement, match in [
            ("ALTER TABLE {t} DISABLE TRIGGER ALL", "must be owner"),
            ('DROP TRIGGER "activity_logs_chain" ON {t}', "must be owner"),
            ('DROP TRIGGER "activity_logs_no_rewrite" ON {t}', "must be owner"),
            ("UPDATE pg_catalog.pg_trigger SET tgenabled = 'D'", "permission denied"),
            ("ALTER TABLE {t} RENAME TO moved", "must be owner"),
            ("DROP TABLE {t}", "must be owner"),
            ("DELETE FROM {t}", "permission denied"),
            ("UPDATE {t} SET action = 'x'", "permission denied"),
            ("TRUNCATE {t}", "permission denied"),
        ]:
            refused(statement, match, t=ACTIVITY)
    assert chain.verify(check_anchor=False).ok


def test_a_forged_insert_by_the_application_role_gets_the_database_time_and_link(as_app):
    entries(2)
    with as_app:
        execute(
            sql.SQL(
                "INSERT INTO {t} (id, action, actor_email, created_at, chain_seq, prev_hash,"
                " row_hash, details, resource_type, resource_id, object_repr, user_agent,"
                " request_id) VALUES (gen_random_uuid(), 'forged', 'ceo@example.com', %s, 1,"
                " '\\x00', '\\x00', '{{}}', '', '', '', '', '')"
            ).format(t=ACTIVITY),
            [OLD],
        )
    forged = ActivityLog.objects.get(action="forged")
    assert forged.created_at > OLD
    assert forged.chain_seq == ActivityLog.objects.count()
    assert chain.verify(check_anchor=False).ok


# --- the owner and the superuser: succeeds in the database, named by the verifier ----


def test_owner_disable_trigger_all_then_delete_is_named(as_owner):
    rows = entries(4)
    gone = seq_of(rows[1])
    with as_owner:
        execute("ALTER TABLE {t} DISABLE TRIGGER ALL", t=ACTIVITY)
        execute("DELETE FROM {t} WHERE id = %s", [rows[1].pk], t=ACTIVITY)
    problem = broken()
    assert (problem.table, problem.seq, problem.id) == ("activity_logs", gone + 1, str(rows[2].pk))
    assert "rows removed" in problem.what


def test_owner_drop_trigger_then_delete_is_named(as_owner):
    rows = entries(4)
    with as_owner:
        # both guards of DELETE: the append-only trigger and the archive's check
        execute('DROP TRIGGER "activity_logs_no_rewrite" ON {t}', t=ACTIVITY)
        execute('DROP TRIGGER "activity_logs_archive_only" ON {t}', t=ACTIVITY)
        execute("DELETE FROM {t} WHERE id = %s", [rows[2].pk], t=ACTIVITY)
    problem = broken()
    assert (problem.seq, problem.id) == (seq_of(rows[3]), str(rows[3].pk))


def test_owner_cannot_update_pg_trigger(as_owner):
    entries(2)
    with as_owner:
        refused("UPDATE pg_catalog.pg_trigger SET tgenabled = 'D'", "permission denied")


@pytest.mark.django_db(transaction=True)
def test_superuser_pg_trigger_update_then_delete_is_named():
    # Committed, as an attacker would: a catalog edit takes effect for later transactions.
    events = [required(record_security_event(event_type="logout")) for _ in range(4)]
    after = SecurityEvent.objects.values_list("chain_seq", flat=True).get(pk=events[2].pk)
    relation = "audit.security_events"
    with connect() as conn:
        try:
            conn.execute(
                "UPDATE pg_catalog.pg_trigger SET tgenabled = 'D' WHERE tgrelid = %s::regclass",
                [relation],
            )
            conn.execute("DELETE FROM audit.security_events WHERE id = %s", [events[1].pk])
        finally:
            conn.execute(
                "UPDATE pg_catalog.pg_trigger SET tgenabled = 'A' WHERE tgrelid = %s::regclass",
                [relation],
            )
    problem = broken()
    assert (problem.table, problem.seq, problem.id) == ("security_events", after, str(events[2].pk))


def test_owner_forged_insert_without_the_trigger_is_named(as_owner):
    entries(3)
    with as_owner:
        execute("ALTER TABLE {t} DISABLE TRIGGER ALL", t=ACTIVITY)
        execute(
            "INSERT INTO {t} (id, action, created_at, details, actor_email, resource_type,"
            " resource_id, object_repr, user_agent, request_id) VALUES"
            " ('00000000-0000-4000-8000-000000000001', 'forged', %s, '{{}}', '', '', '', '',"
            " '', '')",
            [OLD],
            t=ACTIVITY,
        )
    problem = broken()
    assert problem.id == "00000000-0000-4000-8000-000000000001"
    assert problem.seq is None and "no chain link" in problem.what


def test_owner_forged_tail_row_with_a_valid_hash_but_old_time_is_named(as_owner):
    entries(3)
    head = required(ActivityLog.objects.order_by("-chain_seq").first())
    head_hash = bytes(required(head.row_hash))
    new_id = "00000000-0000-4000-8000-000000000002"
    seq = required(head.chain_seq) + 1
    values = [str(seq), new_id, OLD, None, "", "forged", "", "", "", "{}", None, "", "", ""]
    digest = chain.row_hash("activity_logs", head_hash, values)
    with as_owner:
        execute('ALTER TABLE {t} DISABLE TRIGGER "activity_logs_chain"', t=ACTIVITY)
        execute(
            "INSERT INTO {t} (id, action, created_at, details, chain_seq, prev_hash, row_hash,"
            " actor_email, resource_type, resource_id, object_repr, user_agent, request_id)"
            " VALUES (%s, 'forged', %s, '{{}}', %s, %s, %s, '', '', '', '', '', '')",
            [new_id, OLD, seq, head_hash, digest],
            t=ACTIVITY,
        )
    problem = broken()
    assert (problem.seq, problem.id) == (seq, new_id)
    assert "earlier than the previous row" in problem.what


def test_owner_reordering_rows_is_named(as_owner):
    rows = entries(4)
    a, b = seq_of(rows[1]), seq_of(rows[2])
    with as_owner:
        execute("ALTER TABLE {t} DISABLE TRIGGER ALL", t=ACTIVITY)
        # swap the two rows' places in the chain (seq, links and hashes move with them)
        execute(
            "UPDATE {t} SET chain_seq = -chain_seq WHERE chain_seq IN (%s, %s)", [a, b], t=ACTIVITY
        )
        execute("UPDATE {t} SET chain_seq = %s WHERE chain_seq = %s", [b, -a], t=ACTIVITY)
        execute("UPDATE {t} SET chain_seq = %s WHERE chain_seq = %s", [a, -b], t=ACTIVITY)
    problem = broken()
    assert problem.seq == a and problem.id == str(rows[2].pk)


def test_owner_altering_a_row_is_named(as_owner):
    rows = entries(3)
    with as_owner:
        execute("ALTER TABLE {t} DISABLE TRIGGER ALL", t=ACTIVITY)
        execute(
            "UPDATE {t} SET actor_email = 'someone@else' WHERE id = %s", [rows[1].pk], t=ACTIVITY
        )
    problem = broken()
    assert (problem.seq, problem.id) == (seq_of(rows[1]), str(rows[1].pk))
    assert "content" in problem.what


def rechain(table: str) -> None:
    """The attacker's full rewrite: renumber and rehash every remaining row, in order."""
    exprs = sql.SQL(", ").join(sql.SQL(e) for e, _ in chain.COLUMNS[table])
    rows = execute(
        sql.SQL("SELECT id, {e} FROM {t} AS t ORDER BY t.chain_seq").format(
            e=exprs, t=sql.Identifier("audit", table)
        )
    )
    prev = chain.GENESIS
    for n, (row_id, *values) in enumerate(rows, start=1):
        values[0] = str(n)
        digest = chain.row_hash(table, prev, values)
        execute(
            sql.SQL(
                "UPDATE {t} SET chain_seq = %s, prev_hash = %s, row_hash = %s WHERE id = %s"
            ).format(t=sql.Identifier("audit", table)),
            [-n, prev, digest, row_id],
        )
        prev = digest
    execute(
        sql.SQL("UPDATE {t} SET chain_seq = -chain_seq WHERE chain_seq < 0").format(
            t=sql.Identifier("audit", table)
        )
    )


@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_a_full_rewrite_with_a_recomputed_chain_is_caught_by_the_anchor(who, as_owner, storage):
    rows = entries(5)
    result = chain.verify(storage=storage)
    assert result.ok and result.anchor is None
    name = chain.write_anchor(result, storage=storage)
    anchored = result.heads["activity_logs"].seq
    entries(2, prefix="after")
    assert chain.verify(storage=storage).ok  # growing past the anchor is fine

    def rewrite():
        execute("ALTER TABLE {t} DISABLE TRIGGER ALL", t=ACTIVITY)
        execute("DELETE FROM {t} WHERE id = %s", [rows[2].pk], t=ACTIVITY)
        rechain("activity_logs")

    if who == "owner":
        with as_owner:
            rewrite()
    else:
        rewrite()
    # the chain alone is consistent again ...
    assert chain.verify(check_anchor=False).ok
    # ... but the row at the anchored seq no longer has the anchored hash
    result = chain.verify(storage=storage)
    assert result.anchor == name
    assert result.problem is not None
    assert (result.problem.table, result.problem.seq) == ("activity_logs", anchored)
    assert "anchored hash" in result.problem.what


def test_removing_the_rows_up_to_the_anchored_head_is_caught_by_the_anchor(as_owner, storage):
    entries(4)
    result = chain.verify(storage=storage)
    chain.write_anchor(result, storage=storage)
    head = result.heads["activity_logs"].seq
    with as_owner:
        execute("ALTER TABLE {t} DISABLE TRIGGER ALL", t=ACTIVITY)
        execute("DELETE FROM {t} WHERE chain_seq >= %s", [head - 1], t=ACTIVITY)
    assert chain.verify(check_anchor=False).ok  # a shorter chain is still a chain
    problem = chain.verify(storage=storage).problem
    assert problem is not None and problem.seq == head and "gone" in problem.what


def test_the_latest_anchor_is_the_one_compared(db, storage):
    entries(1)
    first = chain.write_anchor(chain.verify(storage=storage), storage=storage)
    entries(1)
    second = chain.write_anchor(chain.verify(storage=storage), storage=storage)
    assert first < second
    assert chain.latest_anchor(storage=storage)[0] == second
    assert chain.verify(storage=storage).anchor == second
