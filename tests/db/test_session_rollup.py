"""The dashboard's session rollup against a count of the sessions.

PostgreSQL's triggers on core.codex_sessions append changes (core/migrations/0008) that
the dashboard folds into hours (core/selectors.py); 0009 counts what was there before.
Every test compares the rollup with an answer of its own: the table's rows counted in
Python, per status and per UTC hour of their start (Python's own floor of the time).
Attacked the ways its writers could break it: any sequence of inserts, status changes,
moved start times, deletes, folds and reads (hypothesis), rolled-back work, concurrent
writers of one hour and concurrent folds, the gateway's role (which holds no privilege
on the rollup), TRUNCATE, a read-only database, day boundaries inside an hour, and the
migration onto a table that already holds sessions while a writer keeps writing.
"""

from __future__ import annotations

import collections
import datetime
import importlib
import threading
import time
import types
import uuid
import zoneinfo

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import selectors
from core.models import SESSION_STATUSES, CodexSession, SessionStatusChange, SessionStatusHour
from tests.db import roles

UTC = datetime.UTC
#: Written out here rather than imported: the test's own idea of a failure.
FAILURES = {"failed", "timeout"}
STATUSES = [s for s, _ in SESSION_STATUSES] + ["running"]
Key = tuple[datetime.datetime, str]


def _floor(moment: datetime.datetime) -> datetime.datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def counted() -> dict[Key, int]:
    """The independent answer: the table's sessions per UTC hour (floored here) and status."""
    counts: collections.Counter[Key] = collections.Counter()
    for created_at, status in CodexSession.objects.values_list("created_at", "status"):
        counts[(_floor(created_at), status)] += 1
    return dict(counts)


def unfolded() -> dict[Key, int]:
    """The rollup added up here: the folded hours plus the changes not folded yet."""
    total: collections.Counter[Key] = collections.Counter()
    for hour, status, n in SessionStatusHour.objects.values_list("hour", "status", "sessions"):
        total[(hour.astimezone(UTC), status)] += n
    for hour, status, n in SessionStatusChange.objects.values_list("hour", "status", "change"):
        total[(hour.astimezone(UTC), status)] += n
    return {key: n for key, n in total.items() if n}


def failures_counted() -> dict[datetime.datetime, int]:
    per_hour: collections.Counter[datetime.datetime] = collections.Counter()
    for (hour, status), n in counted().items():
        if status in FAILURES:
            per_hour[hour] += n
    return dict(per_hour)


FAR = datetime.timedelta(days=3650)


def failures_read() -> dict[datetime.datetime, int]:
    """What the dashboard's failures chart reads, over every hour."""
    now = timezone.now()
    return selectors.failed_sessions_by_hour(now - FAR, now + FAR)


def _insert(conn_or_cursor, status: str, created_at: datetime.datetime) -> uuid.UUID:
    pk = uuid.uuid4()
    conn_or_cursor.execute(
        "INSERT INTO core.codex_sessions (session_id, user_id, model, status, created_at)"
        " VALUES (%s, 'u', 'm', %s, %s)",
        [pk, status, created_at],
    )
    return pk


BASE = datetime.datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # a DST change in Europe

operations = st.lists(
    st.tuples(
        st.sampled_from(
            ["insert", "insert_at", "status", "move", "delete", "bulk", "undo", "fold", "read"]
        ),
        st.sampled_from(STATUSES),
        st.integers(0, 7 * 3600),
    ),
    max_size=25,
)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations)
def test_any_sequence_of_writes_leaves_the_rollup_equal_to_a_count(ops):
    """Inserts (with the default start time, then moved; or with their own), status
    changes, start times moved across hours (and the microsecond before an hour's edge),
    deletes, one UPDATE over many rows, a savepoint rolled back, folds and the
    dashboard's reads: after each step the rollup equals the count."""
    CodexSession.objects.all().delete()
    ids: list[uuid.UUID] = []
    for kind, status, n in ops:
        moment = BASE + datetime.timedelta(seconds=n) - datetime.timedelta(microseconds=n % 2)
        target = ids[n % len(ids)] if ids else None
        if kind == "insert":
            session = CodexSession.objects.create(
                session_id=uuid.uuid4(), user_id="u", model="m", status=status
            )
            CodexSession.objects.filter(pk=session.pk).update(created_at=moment)
            ids.append(session.pk)
        elif kind == "insert_at":
            with connection.cursor() as cursor:
                ids.append(_insert(cursor, status, moment))
        elif kind == "fold":
            selectors.fold_status_changes()
            assert not SessionStatusChange.objects.exists()
        elif kind == "read":
            assert failures_read() == failures_counted()
            assert not SessionStatusChange.objects.exists()  # the read folded them
        elif target is None:
            continue
        elif kind == "status":
            CodexSession.objects.filter(pk=target).update(status=status)
        elif kind == "move":
            CodexSession.objects.filter(pk=target).update(created_at=moment)
        elif kind == "delete":
            CodexSession.objects.filter(pk=target).delete()
            ids.remove(target)
        elif kind == "bulk":
            CodexSession.objects.filter(pk__in=ids[: n % 7 + 1]).update(status=status)
        elif kind == "undo":
            with pytest.raises(RuntimeError), transaction.atomic():
                CodexSession.objects.filter(pk__in=ids).update(status=status)
                raise RuntimeError("rolled back")
        assert unfolded() == counted(), (kind, status, n)
    assert failures_read() == failures_counted()


@pytest.mark.django_db
def test_a_fold_moves_at_most_its_batch_oldest_first_and_changes_no_figure():
    with connection.cursor() as cursor:
        for i in range(7):
            _insert(cursor, STATUSES[i % 3], BASE + datetime.timedelta(hours=i))
    assert SessionStatusChange.objects.count() == 7
    oldest = sorted(SessionStatusChange.objects.values_list("id", flat=True))
    assert selectors.fold_status_changes(batch=3) == 3
    assert sorted(SessionStatusChange.objects.values_list("id", flat=True)) == oldest[3:]
    assert unfolded() == counted()
    assert selectors.fold_status_changes(batch=3) == 3
    assert selectors.fold_status_changes(batch=3) == 1
    assert selectors.fold_status_changes(batch=3) == 0
    assert unfolded() == counted()


@pytest.mark.django_db
def test_an_update_that_changes_neither_status_nor_start_appends_nothing():
    """The gateway's other updates (metadata, updated_at) run no function: the
    update trigger's WHEN clause holds them back."""
    session = CodexSession.objects.create(
        session_id=uuid.uuid4(), user_id="u", model="m", status="active"
    )
    selectors.fold_status_changes()
    CodexSession.objects.filter(pk=session.pk).update(metadata={"step": 2}, model="gpt-5")
    CodexSession.objects.filter(pk=session.pk).update(status="active")  # same value
    assert not SessionStatusChange.objects.exists()
    assert unfolded() == counted()


@pytest.mark.parametrize(
    "zone", ["UTC", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Eucla"]
)
@pytest.mark.django_db
def test_sessions_by_status_equal_a_count_from_the_local_midnights(zone):
    """Today and the last seven days start at local midnights; in +05:30, +05:45 and
    +08:45 those fall inside a UTC hour, whose part is counted live. Sessions a
    microsecond either side of each midnight and of the hours around it."""
    tz = zoneinfo.ZoneInfo(zone)
    with timezone.override(tz):
        window = selectors.Window.starting(timezone.now())
        edges = [window.today, window.week_ago]
        tiny = datetime.timedelta(microseconds=1)
        moments = []
        for edge in edges:
            for around in (_floor(edge), _floor(edge) + datetime.timedelta(hours=1), edge):
                moments += [around - tiny, around, around + tiny]
        moments.append(window.now - datetime.timedelta(seconds=1))
        with connection.cursor() as cursor:
            for i, moment in enumerate(moments):
                _insert(cursor, STATUSES[i % len(STATUSES)], moment)
        found = {r.status: (r.today, r.week) for r in selectors.sessions_by_status(window)}
    expected: dict[str, list[int]] = {}
    for created_at, status in CodexSession.objects.values_list("created_at", "status"):
        if created_at >= window.week_ago:
            row = expected.setdefault(status, [0, 0])
            row[1] += 1
            if created_at >= window.today:
                row[0] += 1
    assert found == {s: tuple(v) for s, v in expected.items()}


@pytest.mark.django_db
def test_every_status_counts_in_the_failures_only_if_it_is_a_failure():
    """The failures chart filters the rollup by FAILED_STATUSES; each status the
    admin offers is counted there exactly when it is a failure."""
    for status in STATUSES:
        CodexSession.objects.create(session_id=uuid.uuid4(), user_id="u", model="m", status=status)
    assert sum(failures_read().values()) == len(FAILURES & set(STATUSES)) == 2


def test_the_gateway_role_keeps_it_without_any_privilege_on_it(default_as_superuser):
    """A role like the gateway's, with DML on core.codex_sessions only: its writes are
    counted (the function runs as its owner), and it can neither write the rollup nor
    call the function."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE test_gateway NOLOGIN")
        cursor.execute("GRANT USAGE ON SCHEMA core TO test_gateway")
        cursor.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON core.codex_sessions TO test_gateway"
        )
        cursor.execute("SET ROLE test_gateway")
        first = _insert(cursor, "failed", BASE)
        second = _insert(cursor, "active", BASE)
        cursor.execute(
            "UPDATE core.codex_sessions SET status = 'timeout' WHERE session_id = %s", [second]
        )
        cursor.execute("DELETE FROM core.codex_sessions WHERE session_id = %s", [first])
        for statement in (
            "INSERT INTO core.session_status_hours VALUES (now(), 'failed', 5)",
            "INSERT INTO core.session_status_changes (hour, status, change)"
            " VALUES (now(), 'failed', 5)",
            "UPDATE core.session_status_hours SET sessions = 0",
            "SELECT core.count_session_statuses()",
        ):
            cursor.execute("SAVEPOINT attempt")
            with pytest.raises(DatabaseError) as refused:
                cursor.execute(statement)
            assert isinstance(refused.value.__cause__, psycopg.errors.InsufficientPrivilege)
            cursor.execute("ROLLBACK TO SAVEPOINT attempt")
        cursor.execute("RESET ROLE")
    assert unfolded() == counted() == {(BASE, "timeout"): 1}


@pytest.mark.django_db
def test_the_function_runs_as_the_migrator_with_a_pinned_search_path():
    """SECURITY DEFINER with the caller's search_path would let a caller's own schema
    shadow what it calls; the catalog shows it pinned, and owned by the migrator."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner)"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'core' AND p.proname = 'count_session_statuses'"
        )
        secdef, config, owner = cursor.fetchone()
    assert secdef is True
    assert config == ["search_path=pg_catalog, pg_temp"]
    assert owner == roles.role_name(roles.MIGRATOR)


def test_truncate_empties_it(default_as_migrator):
    for status in ("failed", "timeout", "active"):
        CodexSession.objects.create(session_id=uuid.uuid4(), user_id="u", model="m", status=status)
    selectors.fold_status_changes()
    CodexSession.objects.create(session_id=uuid.uuid4(), user_id="u", model="m", status="failed")
    assert SessionStatusHour.objects.exists() and SessionStatusChange.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE core.codex_sessions CASCADE")
    assert not SessionStatusHour.objects.exists()
    assert not SessionStatusChange.objects.exists()


@pytest.mark.django_db
def test_a_database_that_refuses_the_fold_still_gets_the_right_figures(caplog):
    """A read-only transaction (as on a standby) refuses the fold's write: the figures
    are read unfolded, and the refusal is logged, not raised."""
    CodexSession.objects.create(session_id=uuid.uuid4(), user_id="u", model="m", status="failed")
    with connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
    assert failures_read() == failures_counted()
    assert SessionStatusChange.objects.count() == 1
    assert "could not fold" in caplog.text


def _app_connection() -> psycopg.Connection:
    return psycopg.connect(**roles.params(roles.APPLICATION))


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_hour_never_wait_and_concurrent_folds_lose_nothing():
    """Eight connections as the application role, each inserting a failed session
    and failing an existing one in the same hour, all holding their changes
    uncommitted at the same moment (so none waits for another: with a shared counter
    row the barrier would time out), half of them rolling back; meanwhile two
    connections fold over and over. The rollup counts exactly what was committed."""
    hour = _floor(timezone.now())
    with connection.cursor() as cursor:
        existing = [_insert(cursor, "active", hour) for _ in range(8)]
    barrier = threading.Barrier(8)
    writing = threading.Event()
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            with _app_connection() as conn:
                conn.execute("SET lock_timeout = '5s'")
                _insert(conn, "failed", hour + datetime.timedelta(minutes=i))
                conn.execute(
                    "UPDATE core.codex_sessions SET status = 'timeout' WHERE session_id = %s",
                    [existing[i]],
                )
                barrier.wait(timeout=30)  # every transaction holds its changes at once
                if i % 2:
                    conn.rollback()
                else:
                    conn.commit()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    def fold() -> None:
        try:
            with _app_connection() as conn:
                conn.autocommit = True
                while writing.is_set():
                    conn.execute(selectors._FOLD_STATUS_CHANGES, {"batch": 3})
        except BaseException as exc:
            errors.append(exc)

    writing.set()
    folders = [threading.Thread(target=fold) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in folders + writers:
        t.start()
    for t in writers:
        t.join(timeout=60)
    writing.clear()
    for t in folders:
        t.join(timeout=60)
    assert not errors
    assert unfolded() == counted()
    assert failures_read() == failures_counted() == {hour: 8}


# --- The migrations, onto a table that already holds sessions --------------------------

BEFORE = [("core", "0007_translatable_names")]
recount_migration = importlib.import_module("core.migrations.0009_session_status_recount")


def _migrate(targets=None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.db_role("migrator")
def test_the_migrations_count_what_was_there_while_a_writer_keeps_writing():
    """Unapplied, the tables and triggers are gone. Applied again onto 20,000 sessions
    while another connection keeps inserting sessions and changing their statuses
    (each its own transaction, committed while the recount runs): every session is
    counted once. A second recount, with the writer still going, changes nothing."""
    _migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('core.session_status_hours')")
            assert cursor.fetchone()[0] is None
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'core.codex_sessions'::regclass"
                " AND tgname LIKE 'codex_sessions_count_%%'"
            )
            assert cursor.fetchone()[0] == 0
            cursor.execute(
                "INSERT INTO core.codex_sessions (session_id, user_id, model, status, created_at)"
                " SELECT gen_random_uuid(), 'u', 'm',"
                " (ARRAY['active', 'failed', 'completed'])[i %% 3 + 1],"
                " %s::timestamptz + i * interval '17 seconds' FROM generate_series(1, 20000) AS i",
                [BASE],
            )
        stop = threading.Event()
        commits: list[float] = []
        errors: list[BaseException] = []

        def keep_writing() -> None:
            try:
                with _app_connection() as conn:
                    conn.autocommit = True
                    conn.execute("SET lock_timeout = '10s'")
                    i = 0
                    while not stop.is_set():
                        i += 1
                        pk = _insert(conn, STATUSES[i % len(STATUSES)], BASE)
                        conn.execute(
                            "UPDATE core.codex_sessions SET status = 'timeout'"
                            " WHERE session_id = %s",
                            [pk],
                        )
                        commits.append(time.monotonic())
            except BaseException as exc:
                errors.append(exc)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            while not commits:
                time.sleep(0.01)
            started = time.monotonic()
            _migrate()
            ended = time.monotonic()
            while len([c for c in commits if c > ended]) < 3:
                time.sleep(0.01)
            recount_migration.recount(None, types.SimpleNamespace(connection=connection))
        finally:
            stop.set()
            writer.join(timeout=60)
        assert not errors
        assert [c for c in commits if started < c < ended], "no write during the migrations"
        assert unfolded() == counted()
        assert failures_read() == failures_counted()
    finally:
        _migrate()
