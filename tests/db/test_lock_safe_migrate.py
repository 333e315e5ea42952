"""Lock-safe migrate against real sessions holding locks.

The fixture app ``lockapp`` has a migration that locks two tables in one transaction
(0002) and a non-atomic ``CREATE INDEX CONCURRENTLY`` (0003). A second session reads
``beta`` and stays idle in its transaction, as a forgotten shell or a stuck worker
does. A third keeps reading ``alpha`` with its own ``lock_timeout``, as the admin
does: it must never be stuck behind the migration for that long.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import ActivityLog
from portal.db import locks

# Migrations run as the migrator, the owner of every schema (tests/db/roles.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_migrator"),
]

# The reader's own patience: ten times the migration's lock timeout below.
READER_LOCK_TIMEOUT = "3s"


def connect(**extra) -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"],
        port=s["PORT"],
        user=s["USER"],
        password=s["PASSWORD"],
        dbname=s["NAME"],
        **extra,
    )


def columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'lockapp' AND table_name = %(t)s",
            {"t": table},
        )
        return {r[0] for r in cursor.fetchall()}


def applied(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM django_migrations WHERE app = 'lockapp' AND name = %(n)s", {"n": name}
        )
        return cursor.fetchone() is not None


@pytest.fixture
def at_0001() -> Iterator[None]:
    call_command("migrate", "lockapp", "0001", verbosity=0)
    yield
    call_command("migrate", "lockapp", verbosity=0)


@pytest.fixture
def fast_policy(settings):
    settings.MIGRATION_LOCK_TIMEOUT = 0.3
    settings.MIGRATION_WEAK_LOCK_TIMEOUT = 0.3
    settings.MIGRATION_RETRY_BACKOFF = 0.2
    return settings


class IdleHolder:
    """A session that read ``table`` and then sits idle in its transaction."""

    def __init__(self, table: str):
        self.conn = connect(application_name="idle-holder-test")
        self.conn.execute(f"SELECT count(*) FROM lockapp.{table}")  # noqa: S608 (fixed name)
        self.pid = self.conn.info.backend_pid

    def end_after(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.end)
        timer.start()
        return timer

    def end(self) -> None:
        if not self.conn.closed:
            # Already terminated when a test ended it with --terminate-blockers.
            with contextlib.suppress(psycopg.OperationalError):
                self.conn.rollback()

    def close(self) -> None:
        self.end()
        self.conn.close()


class Reader(threading.Thread):
    """Reads ``lockapp.alpha`` in a loop, giving up on a lock after READER_LOCK_TIMEOUT."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.reads = 0

    def run(self) -> None:
        with connect(autocommit=True, application_name="reader-test") as conn:
            conn.execute(f"SET lock_timeout = '{READER_LOCK_TIMEOUT}'")
            while not self.stop.is_set():
                try:
                    conn.execute("SELECT count(*) FROM lockapp.alpha").fetchone()
                    self.reads += 1
                except psycopg.errors.LockNotAvailable as exc:
                    self.errors.append(str(exc))
                time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=30)


def test_a_wait_on_the_second_table_never_holds_the_first_and_it_completes_later(
    at_0001, fast_policy
):
    """The outage of the report: the migration locks alpha, then waits for beta behind
    an idle transaction. Here it gives up within its lock timeout, rolls back (freeing
    alpha), retries, and completes once the holder has gone."""
    fast_policy.MIGRATION_LOCK_RETRIES = 20
    holder = IdleHolder("beta")
    reader = Reader()
    reader.start()
    timer = holder.end_after(4.0)
    try:
        call_command("migrate", "lockapp", "0002", verbosity=0)
    finally:
        timer.cancel()
        holder.close()
        reader.finish()
    assert applied("0002_two_tables_one_transaction")
    assert "note" in columns("alpha") and "note" in columns("beta")
    assert reader.reads > 0
    assert reader.errors == []


def test_when_retries_run_out_the_job_fails_naming_the_holder(at_0001, fast_policy):
    fast_policy.MIGRATION_LOCK_RETRIES = 2
    holder = IdleHolder("beta")
    # Only so that a migrate that waits without limit fails this test instead of hanging.
    safety = holder.end_after(20.0)
    try:
        with pytest.raises(locks.MigrationBlocked) as failure:
            call_command("migrate", "lockapp", "0002", verbosity=0)
    finally:
        safety.cancel()
        holder.close()
    text = str(failure.value)
    assert isinstance(failure.value, CommandError)
    assert f"pid {holder.pid} idle-holder-test" in text
    assert "idle in transaction" in text
    assert "AccessShareLock" in text and "lockapp.beta" in text
    assert "AccessExclusiveLock on lockapp.beta" in text  # what the migration waited for
    assert "--terminate-blockers" in text
    assert "gave up after 3 attempts" in text
    # Nothing half-applied: the first table's column was rolled back with the rest.
    assert not applied("0002_two_tables_one_transaction")
    assert "note" not in columns("alpha")


def test_terminate_blockers_ends_the_holder_with_an_audit_record(at_0001, fast_policy):
    fast_policy.MIGRATION_LOCK_RETRIES = 3
    holder = IdleHolder("beta")
    try:
        call_command("migrate", "lockapp", "0002", "--terminate-blockers", verbosity=0)
    finally:
        holder.close()
    assert applied("0002_two_tables_one_transaction")
    entry = ActivityLog.objects.get(action="migrate.terminate_blocker")
    assert entry.resource_id == str(holder.pid)
    assert entry.details["migration"] == "lockapp.0002_two_tables_one_transaction"
    with connect(autocommit=True) as conn:
        alive = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %(p)s", {"p": holder.pid}
        ).fetchone()
    assert alive == (0,)


def test_cancel_and_terminate_blockers_are_exclusive():
    with pytest.raises(CommandError, match="not allowed with argument"):
        call_command("migrate", "--cancel-blockers", "--terminate-blockers", verbosity=0)


def test_a_concurrent_index_that_gave_up_is_dropped_and_built_again(at_0001, fast_policy):
    """CREATE INDEX CONCURRENTLY waits for every older transaction; when it gives up it
    leaves an invalid index, which the retry drops before building it again."""
    fast_policy.MIGRATION_LOCK_RETRIES = 20
    call_command("migrate", "lockapp", "0002", verbosity=0)
    holder = IdleHolder("alpha")
    timer = holder.end_after(2.0)
    try:
        call_command("migrate", "lockapp", "0003", verbosity=0)
    finally:
        timer.cancel()
        holder.close()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid FROM pg_index "
            "WHERE indexrelid = to_regclass('lockapp.beta_note_idx')"
        )
        assert cursor.fetchall() == [(True,)]


def test_the_sessions_timeouts_are_restored_after_migrate(at_0001, fast_policy):
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        before = cursor.fetchone()
        call_command("migrate", "lockapp", verbosity=0)
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone() == before


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ('ALTER TABLE "core"."t" ADD COLUMN "x" integer NULL', locks.CATALOG_ONLY),
        ('ALTER TABLE "core"."t" ADD COLUMN "x" integer DEFAULT 0 NOT NULL', locks.CATALOG_ONLY),
        (
            'ALTER TABLE "core"."t" ADD COLUMN "x" timestamptz DEFAULT now() NOT NULL',
            locks.CATALOG_ONLY,
        ),
        ('ALTER TABLE "core"."t" ADD COLUMN "x" uuid DEFAULT gen_random_uuid()', locks.HEAVY),
        ('ALTER TABLE "core"."t" ALTER COLUMN "x" TYPE bigint', locks.HEAVY),
        ('ALTER TABLE "core"."t" ALTER COLUMN "x" SET NOT NULL', locks.HEAVY),
        ('ALTER TABLE "core"."t" ALTER COLUMN "x" DROP NOT NULL', locks.CATALOG_ONLY),
        ('ALTER TABLE "core"."t" ADD CONSTRAINT c CHECK (x > 0) NOT VALID', locks.CATALOG_ONLY),
        ('ALTER TABLE "core"."t" ADD CONSTRAINT c CHECK (x > 0)', locks.HEAVY),
        ('ALTER TABLE "core"."t" VALIDATE CONSTRAINT c', locks.WEAK),
        ('CREATE INDEX CONCURRENTLY "i" ON "core"."t" ("x")', locks.WEAK),
        ('CREATE INDEX "i" ON "core"."t" ("x")', locks.HEAVY),
        ('DROP INDEX CONCURRENTLY IF EXISTS "core"."i"', locks.WEAK),
        ('CREATE TABLE "core"."n" ("id" bigint)', locks.CATALOG_ONLY),
        ("UPDATE core.t SET x = 1", locks.HEAVY),
        ("not sql at all", locks.HEAVY),
    ],
)
def test_statements_are_classed_by_what_postgresql_does_with_them(sql, kind):
    assert locks.classify(sql) == kind


def test_a_blockers_query_is_shown_without_its_values():
    masked = locks.mask_literals("SELECT * FROM auth.users WHERE email = 'a@b.c' AND n = 42")
    assert "a@b.c" not in masked and "42" not in masked
    assert masked == "SELECT * FROM auth.users WHERE email = ? AND n = ?"


def test_a_new_column_with_db_default_keeps_the_previous_releases_inserts_working(at_0001):
    """The gateway's INSERT names only the columns it knows; db_default fills the rest."""
    call_command("migrate", "lockapp", "0004", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO lockapp.alpha (name) VALUES ('from the gateway')")
        cursor.execute("SELECT counter FROM lockapp.alpha WHERE name = 'from the gateway'")
        assert cursor.fetchall() == [(0,)]


def test_a_check_added_not_valid_then_validated_separately(at_0001):
    call_command("migrate", "lockapp", "0004", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO lockapp.alpha (name, counter) VALUES ('old', -1)")
    call_command("migrate", "lockapp", "0005", verbosity=0)
    state = (
        "SELECT convalidated FROM pg_constraint "
        "WHERE conname = 'alpha_counter_not_negative' "
        "AND conrelid = 'lockapp.alpha'::regclass"
    )
    with connection.cursor() as cursor:
        cursor.execute(state)
        assert cursor.fetchall() == [(False,)]
    # Validation reports the old row; once it is fixed, validation succeeds.
    with pytest.raises(Exception, match="violated by some row"):
        call_command("migrate", "lockapp", "0006", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE lockapp.alpha SET counter = 0 WHERE counter < 0")
    call_command("migrate", "lockapp", "0006", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(state)
        assert cursor.fetchall() == [(True,)]
