"""Archiving audit rows (``archive_audit``): exported, verified, removed, chain intact.

Real PostgreSQL and the real filesystem storage (a temporary ``MEDIA_ROOT``); Google
Cloud Storage only through django-storages with Google's client (``Client``, ``Blob``)
mocked at its boundary, as in the anchor tests. Archiving commits (the database ties a
DELETE to the transaction that recorded its boundary), so these are transactional
tests: the suite's flush empties the audit tables afterwards.

Rows older than a cutoff cannot be made through the chain trigger (it stamps the
database's clock), so :func:`history` writes a valid old chain the way a restore
would: the trigger off for that transaction, seq and hashes computed in Python.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import threading
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg import sql

from audit import archive, chain
from audit.models import ActivityLog, ArchiveBoundary, SecurityEvent
from audit.services import record_activity, record_security_event
from tests.db import roles
from tests.diagnostics.support import connect, wait_for

# archive_audit runs as the owner of the audit tables: the migrator (tests/db/roles.py),
# named here; committed work, as the command's own transactions.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_migrator"),
]

DAY = datetime.timedelta(days=1)
APP = "test_archive_app"


def execute(statement: Any, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def history(n: int, start: datetime.datetime, table: str = "activity_logs") -> None:
    """``n`` chained rows, one a minute from ``start``, appended to the table's chain."""
    t = sql.Identifier("audit", table)
    with transaction.atomic():
        head = execute(
            sql.SQL(
                "SELECT chain_seq, row_hash FROM {} WHERE chain_seq IS NOT NULL"
                " ORDER BY chain_seq DESC LIMIT 1"
            ).format(t)
        )
        seq, prev = (head[0][0], bytes(head[0][1])) if head else (0, chain.GENESIS)
        # ALTER TABLE holds its lock to commit: no other session sees the trigger off
        execute(
            sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(t, sql.Identifier(f"{table}_chain"))
        )
        for i in range(n):
            seq += 1
            row_id = str(uuid.uuid4())
            created = start + datetime.timedelta(minutes=i)
            if table == "activity_logs":
                values = [
                    str(seq),
                    row_id,
                    created,
                    None,
                    "old@example.com",
                    "old",
                    "tests.history",
                    str(i),
                    f"old {i}",
                    "{}",
                    None,
                    "",
                    "",
                    "",
                ]
                insert = (
                    "INSERT INTO {} (chain_seq, id, created_at, user_id, actor_email, action,"
                    " resource_type, resource_id, object_repr, details, ip_address, user_agent,"
                    " request_id, client_trace_id, prev_hash, row_hash)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s,"
                    " %s, %s)"
                )
            else:
                values = [
                    str(seq),
                    row_id,
                    created,
                    "login_failure",
                    None,
                    "x@example.com",
                    "192.0.2.7",
                    "ua",
                    "{}",
                    "",
                ]
                insert = (
                    "INSERT INTO {} (chain_seq, id, created_at, event_type, user_id,"
                    " email_attempted, ip_address, user_agent, details, client_trace_id,"
                    " prev_hash, row_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb,"
                    " %s, %s, %s)"
                )
            digest = chain.row_hash(table, prev, values)
            execute(sql.SQL(insert).format(t), [seq, *values[1:], prev, digest])
            prev = digest
        execute(
            sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(
                t, sql.Identifier(f"{table}_chain")
            )
        )


@pytest.fixture(autouse=True)
def empty_trail(default_as_migrator):
    """Start from empty audit tables (set-up writes a few entries), so the old history
    below comes first: the test backend's flush of just those tables (tests/db)."""
    from django.core.management.color import no_style

    tables = [m._meta.db_table for m in (ActivityLog, SecurityEvent, ArchiveBoundary)]
    with transaction.atomic():
        for statement in connection.ops.sql_flush(no_style(), tables):
            execute(statement)


def seqs(model=ActivityLog) -> list[int]:
    return list(model.objects.order_by("chain_seq").values_list("chain_seq", flat=True))


def verified(**kwargs) -> chain.Result:
    result = chain.verify(**kwargs)
    assert result.ok, result.problem
    return result


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return tmp_path


def old_days(days: int) -> datetime.datetime:
    return (timezone.now() - days * DAY).replace(microsecond=0)


def date_of(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).date().isoformat()


def read_lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# --- the happy path ------------------------------------------------------------------


def test_archive_then_verify_passes_across_the_boundary(media, capsys):
    history(30, old_days(400))
    history(12, old_days(400), table="security_events")
    record_activity(action="recent")
    record_security_event(event_type="logout")
    before_total = ActivityLog.objects.count()

    call_command("archive_audit", "--before", date_of(old_days(300)))

    out = capsys.readouterr().out
    assert "audit.activity_logs: archived seq 1 to 30 (30 rows" in out
    assert "audit.security_events: archived seq 1 to 12 (12 rows" in out
    boundaries = {b.table_name: b for b in ArchiveBoundary.objects.all()}
    assert set(boundaries) == {"activity_logs", "security_events"}
    b = boundaries["activity_logs"]
    assert (b.first_seq, b.last_seq, b.row_count, bytes(b.prev_hash)) == (1, 30, 30, chain.GENESIS)
    assert b.archived_by == execute("SELECT current_user")[0][0]
    # the rows are gone, the rest of the chain is untouched
    assert not ActivityLog.objects.filter(resource_type="tests.history").exists()
    remaining = seqs()
    assert remaining[0] == 31 and remaining == list(range(31, 31 + len(remaining)))
    # +1: the run's own activity entry, appended in the deleting transaction
    assert ActivityLog.objects.count() == before_total - 30 + 1
    # the object: a header, then the 30 rows with their chain columns, hashes recomputing
    path = media / b.object_name
    assert (
        b.object_name
        == f"audit-archive/{connection.settings_dict['NAME']}/activity_logs/1-30.jsonl.gz"
    )
    lines = read_lines(path)
    assert lines[0]["table"] == "activity_logs" and lines[0]["rows"] == 30
    rows = lines[1:]
    assert [r["chain_seq"] for r in rows] == list(range(1, 31))
    assert {r["actor_email"] for r in rows} == {"old@example.com"}
    prev = chain.GENESIS
    for r in rows:
        texts = [str(r["chain_seq"]), *(r[c] for c in chain.COLUMN_NAMES["activity_logs"][1:])]
        assert r["prev_hash"] == prev.hex()
        assert chain.text_hash("activity_logs", prev, texts).hex() == r["row_hash"]
        prev = bytes.fromhex(r["row_hash"])
    next_row = ActivityLog.objects.get(chain_seq=31)
    assert prev == bytes(b.last_hash) == bytes(next_row.prev_hash or b"")

    result = verified(archives=True)
    assert result.archives == 2
    assert result.boundaries["activity_logs"].seq == 30
    # the run is an activity entry with what it did
    run = ActivityLog.objects.get(action=archive.ARCHIVE_ACTION)
    assert run.details["ok"] is True
    assert run.details["tables"]["activity_logs"]["rows"] == 30
    assert run.details["tables"]["activity_logs"]["sha256"] == b.object_sha256


def test_consecutive_archives_link_and_a_fully_archived_table_keeps_counting(media):
    history(10, old_days(400))
    history(10, old_days(200))
    call_command("archive_audit", "--before", date_of(old_days(300)), "--table", "activity")
    call_command("archive_audit", "--before", date_of(old_days(100)), "--table", "activity")
    first, second = ArchiveBoundary.objects.filter(table_name="activity_logs").order_by("first_seq")
    assert (first.first_seq, first.last_seq, second.first_seq, second.last_seq) == (1, 10, 11, 20)
    assert bytes(second.prev_hash) == bytes(first.last_hash)
    # the table held the first run's entry besides the history: only that entry remains
    assert ActivityLog.objects.filter(resource_type="tests.history").count() == 0
    verified(archives=True)
    # everything archived (the runs' entries too, by a cutoff of now): the next row
    # continues the chain from the boundary, not from seq 1
    archive.run(["activity_logs"], timezone.now(), storage=FileSystemStorage(location=media))
    last = ArchiveBoundary.objects.filter(table_name="activity_logs").order_by("-last_seq")[0]
    assert min(seqs()) == last.last_seq + 1  # only the last run's own entry is left
    entry = record_activity(action="after everything was archived")
    assert entry is not None
    assert seqs()[-1] == last.last_seq + 2
    verified(archives=True)


# --- what cannot be done -------------------------------------------------------------


def boundary_values(table: str = "activity_logs", **changes) -> dict:
    """A boundary for the next archivable prefix (the first 5 rows after the last one)."""
    latest = chain.latest_boundary(table)
    first = (latest.seq if latest else 0) + 1
    model = ActivityLog if table == "activity_logs" else SecurityEvent
    first_row = model.objects.get(chain_seq=first)
    last_row = model.objects.get(chain_seq=first + 4)
    values = {
        "table_name": table,
        "first_seq": first,
        "last_seq": first + 4,
        "row_count": 5,
        "prev_hash": bytes(first_row.prev_hash or b""),
        "last_hash": bytes(last_row.row_hash or b""),
        "last_created_at": last_row.created_at,
        "before": timezone.now(),
        "object_name": "forged",
        "object_sha256": "0" * 64,
        "object_bytes": 1,
    }
    return {**values, **changes}


def refused(match: str, fn) -> None:
    with pytest.raises(DatabaseError, match=match), transaction.atomic():
        fn()


def delete_range(lo: int, hi: int, table: str = "activity_logs") -> None:
    execute(
        sql.SQL("DELETE FROM {} WHERE chain_seq BETWEEN %s AND %s").format(
            sql.Identifier("audit", table)
        ),
        [lo, hi],
    )


def test_rows_cannot_be_archived_twice(media):
    history(20, old_days(400))
    history(10, old_days(200))
    call_command("archive_audit", "--before", date_of(old_days(300)), "--table", "activity")
    done = ArchiveBoundary.objects.get()
    # the same range again: its rows are gone, and a boundary must continue the last one
    again = {**boundary_values(), "first_seq": 1, "last_seq": 20, "row_count": 20}
    refused("continue the previous one", lambda: ArchiveBoundary.objects.create(**again))
    # the next range, but claiming an already archived row as its start
    refused(
        "continue the previous one",
        lambda: ArchiveBoundary.objects.create(**boundary_values(first_seq=done.last_seq)),
    )
    # a second run finds nothing more to archive
    call_command("archive_audit", "--before", date_of(old_days(300)), "--table", "activity")
    assert ArchiveBoundary.objects.count() == 1
    assert execute("SELECT count(*) FROM audit.archive_boundaries")[0][0] == 1
    # and the boundaries are append-only themselves
    for statement in (
        "UPDATE audit.archive_boundaries SET last_seq = 0",
        "DELETE FROM audit.archive_boundaries",
        "TRUNCATE audit.archive_boundaries",
    ):
        refused("append-only", lambda s=statement: execute(s))


def test_the_owner_deletes_only_the_exact_prefix_of_its_boundary(media):
    history(20, old_days(400))
    # no boundary in this transaction: refused like before
    refused("append-only", lambda: delete_range(1, 5))

    def with_boundary(lo: int, hi: int, **changes):
        def attempt():
            ArchiveBoundary.objects.create(**boundary_values(**changes))
            delete_range(lo, hi)

        return attempt

    refused("exactly the chain prefix", with_boundary(1, 4))  # fewer rows
    refused("exactly the chain prefix", with_boundary(1, 6))  # more rows
    refused("exactly the chain prefix", with_boundary(2, 6))  # not the prefix
    # a boundary whose hash is not the rows'
    refused("not the boundary's last row", with_boundary(1, 5, last_hash=b"\x01" * 32))
    # a boundary claiming rows younger than its cutoff
    refused(
        "not the boundary's last row",
        with_boundary(1, 5, before=old_days(500)),
    )

    # a second statement in the archive's transaction cannot remove more
    def then_more():
        with_boundary(1, 5)()
        delete_range(10, 10)

    refused("exactly the chain prefix", then_more)
    assert seqs() == list(range(1, 21))
    # the right one goes through
    with transaction.atomic():
        with_boundary(1, 5)()
    assert seqs() == list(range(6, 21))
    verified()


@pytest.fixture
def app_role():
    """A role with the application's rights on ``audit``, made by the superuser, which
    the migrator (the test's connection) may SET ROLE to."""
    role = sql.Identifier(APP)
    migrator = sql.Identifier(roles.role_name(roles.MIGRATOR))
    with connect() as admin:  # the superuser's own connection
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA audit TO {}").format(role))
        admin.execute(
            sql.SQL("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA audit TO {}").format(role)
        )
        admin.execute(sql.SQL("GRANT {} TO {}").format(role, migrator))
    yield role
    with connect() as admin:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
        admin.execute(sql.SQL("DROP ROLE {}").format(role))


def test_the_application_role_cannot_delete_even_through_the_archive_path(media, app_role):
    history(10, old_days(400))
    # SET LOCAL: the role ends with the refused transaction
    as_app = sql.SQL("SET LOCAL ROLE {}").format(app_role)

    def app_boundary():
        execute(as_app)
        ArchiveBoundary.objects.create(**boundary_values())

    # it may insert audit rows, but not a boundary (the trigger: the owner only)
    refused("only the owner", app_boundary)

    def app_delete():
        execute(as_app)
        delete_range(1, 5)

    refused("permission denied", app_delete)
    # even granted DELETE by mistake, and with the owner's boundary in the same
    # transaction, its DELETE is refused: the guard allows the table's owner only
    execute(sql.SQL("GRANT DELETE ON audit.activity_logs TO {}").format(app_role))

    def owner_boundary_then_app_delete():
        ArchiveBoundary.objects.create(**boundary_values())
        app_delete()

    refused("append-only", owner_boundary_then_app_delete)
    # and the command refuses it before any work
    with pytest.raises(archive.ArchiveError, match="must run as the owner"), transaction.atomic():
        execute(as_app)
        archive.run(["activity_logs"], timezone.now())
    assert seqs() == list(range(1, 11))
    assert not any(media.rglob("*.gz"))


# --- what the verifier catches -------------------------------------------------------


def archived_twice(media) -> tuple[ArchiveBoundary, ArchiveBoundary]:
    history(10, old_days(400))
    history(10, old_days(200))
    call_command("archive_audit", "--before", date_of(old_days(300)), "--table", "activity")
    call_command("archive_audit", "--before", date_of(old_days(100)), "--table", "activity")
    first, second = ArchiveBoundary.objects.order_by("first_seq")
    return first, second


def rewrite_object(path: Path, change) -> None:
    lines = read_lines(path)
    change(lines)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line) + "\n")


def test_a_tampered_archive_object_is_named_by_archives(media):
    first, second = archived_twice(media)
    verified(archives=True)

    def forge(lines):
        lines[3]["actor_email"] = "someone.else@example.com"

    rewrite_object(media / second.object_name, forge)
    # the database's chain alone still verifies: the archive is outside it
    verified()
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit_chain", "--archives")
    message = str(caught.value)
    assert caught.value.returncode == 1
    assert f"in archive {second.object_name}" in message
    # lines[0] is the header: lines[3] is the third row
    assert f"seq {second.first_seq + 2} in archive" in message
    assert "row_hash does not match" in message
    # the first one is fine and is not named
    assert first.object_name not in message


def test_an_archive_whose_rows_were_rehashed_consistently_is_still_caught(media):
    first, second = archived_twice(media)

    def forge(lines):
        # drop a row and renumber + rehash the rest: internally consistent, but it no
        # longer ends at the boundary's last seq and hash
        del lines[2]
        prev = bytes(first.last_hash)
        for n, row in enumerate(lines[1:], start=second.first_seq):
            row["chain_seq"] = n
            row["prev_hash"] = prev.hex()
            texts = [str(n), *(row[c] for c in chain.COLUMN_NAMES["activity_logs"][1:])]
            prev = chain.text_hash("activity_logs", prev, texts)
            row["row_hash"] = prev.hex()

    path = media / second.object_name
    rewrite_object(path, forge)
    # the owner also gives the boundary the forged object's SHA-256: the ends still differ
    with transaction.atomic():
        execute(
            "ALTER TABLE audit.archive_boundaries DISABLE TRIGGER archive_boundaries_no_rewrite"
        )
        execute(
            "UPDATE audit.archive_boundaries SET object_sha256 = %s WHERE id = %s",
            [hashlib.sha256(path.read_bytes()).hexdigest(), second.pk],
        )
        execute(
            "ALTER TABLE audit.archive_boundaries ENABLE ALWAYS TRIGGER"
            " archive_boundaries_no_rewrite"
        )
    problem, good = archive.verify_archives()
    assert good == 1 and problem is not None and problem.archive == second.object_name
    assert "not as its boundary" in problem.what


def test_a_missing_archive_object_is_named(media):
    _first, second = archived_twice(media)
    (media / second.object_name).unlink()
    problem = chain.verify(archives=True).problem
    assert problem is not None and problem.archive == second.object_name
    assert "cannot be read" in problem.what


def owner_delete(seq: int) -> None:
    """The owner's tampering: both guards of DELETE off for one committed statement."""
    guards = ("activity_logs_no_rewrite", "activity_logs_archive_only")
    with transaction.atomic():
        for trigger in guards:
            execute(f"ALTER TABLE audit.activity_logs DISABLE TRIGGER {trigger}")
        execute("DELETE FROM audit.activity_logs WHERE chain_seq = %s", [seq])
        for trigger in guards:
            execute(f"ALTER TABLE audit.activity_logs ENABLE ALWAYS TRIGGER {trigger}")


def test_a_deleted_middle_row_after_archiving_is_still_caught(media):
    history(20, old_days(400))
    history(10, old_days(10))
    call_command("archive_audit", "--before", date_of(old_days(300)), "--table", "activity")
    verified()
    after = ActivityLog.objects.get(chain_seq=26)
    owner_delete(25)
    problem = chain.verify().problem
    assert problem is not None
    assert (problem.table, problem.seq, problem.id) == ("activity_logs", 26, str(after.pk))
    assert "rows removed" in problem.what
    # and the first row after the boundary, too
    owner_delete(21)
    problem = chain.verify().problem
    assert problem is not None and problem.seq == 22
    assert "first row after the archive boundary (seq 20)" in problem.what


def guards(table: str, on: bool) -> None:
    """Every trigger of an audit table off, or back on as ``ENABLE ALWAYS``."""
    names = execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
        [f"audit.{table}"],
    )
    for (name,) in names:
        execute(
            sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
                sql.Identifier("audit", table),
                sql.SQL("ENABLE ALWAYS" if on else "DISABLE"),
                sql.Identifier(name),
            )
        )


def forge_boundary(lo: int, hi: int, name: str) -> None:
    """The owner's forgery: every guard off, rows ``lo``-``hi`` deleted, and a boundary
    claiming they were archived, consistent with the live rows (no real object)."""
    first, last = ActivityLog.objects.get(chain_seq=lo), ActivityLog.objects.get(chain_seq=hi)
    values = {
        "table_name": "activity_logs",
        "first_seq": lo,
        "last_seq": hi,
        "row_count": hi - lo + 1,
        "prev_hash": bytes(first.prev_hash or b""),
        "last_hash": bytes(last.row_hash or b""),
        "last_created_at": last.created_at,
        "before": timezone.now(),
        "object_name": name,
        "object_sha256": "0" * 64,
        "object_bytes": 1,
        "archived_in": -lo,  # with its trigger off, whatever the forger writes
    }
    with transaction.atomic():
        guards("activity_logs", False)
        guards("archive_boundaries", False)
        delete_range(lo, hi)
        ArchiveBoundary.objects.create(**values)
        guards("activity_logs", True)
        guards("archive_boundaries", True)


def test_a_forged_boundary_over_deleted_rows_is_named(media):
    history(20, old_days(400))
    call_command("archive_audit", "--before", date_of(old_days(300)), "--max-rows", "10")
    forge_boundary(11, 15, "forged")
    # the live chain and the boundaries agree with each other ...
    verified()
    # ... but the object the forged boundary names does not exist
    problem = chain.verify(archives=True).problem
    assert problem is not None and (problem.seq, problem.archive) == (11, "forged")
    assert "cannot be read" in problem.what
    # a boundary that skips rows (16 and 17 gone without one) breaks the boundaries' links
    with transaction.atomic():
        guards("activity_logs", False)
        delete_range(16, 17)
        guards("activity_logs", True)
    forge_boundary(18, 19, "skip")
    problem = chain.verify().problem
    assert problem is not None and (problem.seq, problem.archive) == (18, "skip")
    assert "does not continue the previous one (seq 15)" in problem.what


def test_an_anchor_at_an_archived_row_is_checked_in_its_archive(media):
    history(10, old_days(400))
    storage = FileSystemStorage(location=media)
    chain.write_anchor(verified(storage=storage), storage=storage)  # head: seq 10
    record_activity(action="after the anchor")
    call_command("archive_audit", "--before", date_of(old_days(300)), "--table", "activity")
    boundary = ArchiveBoundary.objects.get()
    assert boundary.last_seq == 10
    assert verified(storage=storage).anchor is not None
    # an anchor inside the archive (seq 5): read from the object
    anchor = {
        "heads": {
            "activity_logs": {
                "seq": 5,
                "hash": read_lines(media / boundary.object_name)[5]["row_hash"],
            }
        }
    }
    assert chain.compare_anchor(anchor, storage=storage) is None
    anchor["heads"]["activity_logs"]["hash"] = "00" * 32
    problem = chain.compare_anchor(anchor, storage=storage)
    assert problem is not None and problem.seq == 5 and "anchored hash" in problem.what


# --- concurrency, dry run, retention, bad input --------------------------------------


def test_concurrent_inserts_during_an_archive_run_leave_a_chain_that_verifies(media):
    history(3000, old_days(400))
    stop = threading.Event()
    errors: list[BaseException] = []
    written = [0]

    def writer():
        try:
            with connect(application_name="archive-writer") as conn:
                while not stop.is_set():
                    conn.execute(
                        "INSERT INTO audit.activity_logs (id, action, actor_email, resource_type,"
                        " resource_id, object_repr, user_agent, request_id) VALUES"
                        " (gen_random_uuid(), 'concurrent', '', 'tests.writer', '', '', '', '')"
                    )
                    written[0] += 1
        except BaseException as exc:
            errors.append(exc)

    real_export = archive.export
    during: list[int] = []

    def export_while_writing(plan, **kwargs):
        # the writer goes on between the export and the deleting transaction
        start = written[0]
        done = real_export(plan, **kwargs)
        wait_for(lambda: written[0] >= start + 20, what="inserts during the archive run")
        during.append(written[0] - start)
        return done

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        storage = FileSystemStorage(location=media)
        with mock.patch.object(archive, "export", export_while_writing):
            report = archive.run(["activity_logs"], old_days(300), storage=storage)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    assert [a.plan.rows for a in report.archived] == [3000]
    assert during and during[0] >= 20
    assert ActivityLog.objects.filter(resource_type="tests.writer").count() == written[0]
    assert not ActivityLog.objects.filter(resource_type="tests.history").exists()
    verified(archives=True)
    assert seqs() == list(range(3001, 3001 + ActivityLog.objects.count()))


def state(media: Path) -> tuple:
    return (
        seqs(),
        seqs(SecurityEvent),
        ArchiveBoundary.objects.count(),
        sorted(str(p) for p in media.rglob("*") if p.is_file()),
    )


def test_dry_run_changes_nothing(media, capsys):
    history(10, old_days(400))
    history(5, old_days(400), table="security_events")
    before = state(media)
    call_command("archive_audit", "--before", date_of(old_days(300)), "--dry-run")
    out = capsys.readouterr().out
    assert "audit.activity_logs: would archive seq 1 to 10 (10 rows" in out
    assert "audit.security_events: would archive seq 1 to 5 (5 rows" in out
    assert state(media) == before  # no row, boundary, object or activity entry


def test_the_default_retention_keeps_everything(media, settings, capsys):
    assert settings.AUDIT_RETENTION_DAYS is None
    history(10, old_days(4000))
    before = state(media)
    call_command("archive_audit")
    assert "keep everything" in capsys.readouterr().out
    assert state(media) == before


def test_a_retention_in_days_archives_what_is_older(media, settings, capsys):
    settings.AUDIT_RETENTION_DAYS = 365
    history(10, old_days(400))
    history(10, old_days(300))
    call_command("archive_audit", "--table", "activity")
    assert seqs()[0] == 11
    assert ArchiveBoundary.objects.get().last_seq == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--before", "2026-13-01"], "YYYY-MM-DD"),
        (["--before", "yesterday"], "YYYY-MM-DD"),
        (["--before", "20260101"], "YYYY-MM-DD"),
        (["--before", "2999-01-01"], "in the future"),
        (["--max-rows", "0"], "at least 1"),
    ],
)
def test_bad_input_is_one_line_and_deletes_nothing(media, args, message):
    history(5, old_days(400))
    before = state(media)
    with pytest.raises(CommandError, match=message) as caught:
        call_command("archive_audit", *args)
    assert "\n" not in str(caught.value)
    assert state(media) == before


def test_max_rows_archives_the_oldest_part_of_the_prefix(media):
    history(30, old_days(400))
    call_command("archive_audit", "--before", date_of(old_days(300)), "--max-rows", "12")
    assert ArchiveBoundary.objects.get().last_seq == 12
    call_command("archive_audit", "--before", date_of(old_days(300)), "--max-rows", "12")
    call_command("archive_audit", "--before", date_of(old_days(300)), "--max-rows", "12")
    ranges = list(
        ArchiveBoundary.objects.order_by("first_seq").values_list("first_seq", "last_seq")
    )
    assert ranges == [(1, 12), (13, 24), (25, 30)]
    verified(archives=True)


def test_a_second_run_at_the_same_time_is_refused(media):
    history(5, old_days(400))
    with connect() as other:
        other.execute(
            "SELECT pg_advisory_lock(('x' || left(md5('audit archive'), 16))::bit(64)::bigint)"
        )
        with pytest.raises(CommandError, match="another archive_audit run"):
            call_command("archive_audit", "--before", date_of(old_days(300)))
    assert ArchiveBoundary.objects.count() == 0 and seqs()[:5] == [1, 2, 3, 4, 5]


def test_nothing_to_archive_exits_0(media, capsys):
    record_activity(action="new")
    call_command("archive_audit", "--before", date_of(old_days(1)))
    out = capsys.readouterr().out
    assert "audit.activity_logs: nothing to archive" in out
    assert ArchiveBoundary.objects.count() == 0
    assert ActivityLog.objects.filter(action=archive.ARCHIVE_ACTION).get().details["nothing"] == [
        "activity_logs",
        "security_events",
    ]


def test_an_unwritable_storage_deletes_nothing(settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = str(blocker)
    history(5, old_days(400))
    with pytest.raises(CommandError, match="could not write the archive") as caught:
        call_command("archive_audit", "--before", date_of(old_days(300)))
    assert "\n" not in str(caught.value)
    # the rows stay; the one after them is the failed run's own entry
    assert seqs() == [1, 2, 3, 4, 5, 6]
    assert ArchiveBoundary.objects.count() == 0
    failed = ActivityLog.objects.get(action=archive.ARCHIVE_ACTION)
    assert failed.details["ok"] is False and "could not write" in failed.details["problem"]


class FakeGoogle:
    """An in-memory bucket behind mocks of Google's ``Client`` and ``Blob`` (the client
    library's boundary); django-storages' GoogleCloudStorage runs for real above it.
    ``lossy`` drops the last byte of each upload, as a broken transfer would."""

    def __init__(self, lossy: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        blobs = self.blobs

        class Blob:
            def __init__(self, name, bucket=None, chunk_size=None, **kwargs):
                self.name = name
                self.size = len(blobs.get(name, b""))
                self.content_type = "application/gzip"

            def upload_from_file(self, fh, rewind=False, content_type=None, **kwargs):
                if rewind:
                    fh.seek(0)
                data = fh.read()
                blobs[self.name] = data[:-1] if lossy else data

            def download_to_file(self, fh, **kwargs):
                fh.write(blobs[self.name])

            def exists(self, client=None):
                return self.name in blobs

            def reload(self, **kwargs):
                pass

        class Bucket:
            name = "audit-bucket"

            def blob(self, name, chunk_size=None, **kwargs):
                return Blob(name)

            def get_blob(self, name, **kwargs):
                return Blob(name) if name in blobs else None

        self.Blob = Blob
        self.client = mock.MagicMock()
        self.client.bucket.return_value = Bucket()

    def storage(self):
        from storages.backends.gcloud import GoogleCloudStorage

        return GoogleCloudStorage(bucket_name="audit-bucket", file_overwrite=False)

    def patches(self):
        return (
            mock.patch("storages.backends.gcloud.Client", return_value=self.client),
            mock.patch("storages.backends.gcloud.Blob", self.Blob),
        )


def test_the_archive_goes_to_google_cloud_storage_and_verifies_from_there():
    google = FakeGoogle()
    client_patch, blob_patch = google.patches()
    history(8, old_days(400))
    with client_patch, blob_patch:
        storage = google.storage()
        report = archive.run(["activity_logs"], old_days(300), storage=storage)
        name = report.archived[0].name
        assert name in google.blobs
        assert ArchiveBoundary.objects.get().object_name == name
        problem, good = archive.verify_archives(storage=storage)
        assert problem is None and good == 1
    with gzip.open(io.BytesIO(google.blobs[name]), "rt") as fh:
        assert sum(1 for _ in fh) == 1 + 8


def test_a_read_back_that_differs_deletes_nothing():
    google = FakeGoogle(lossy=True)
    client_patch, blob_patch = google.patches()
    history(8, old_days(400))
    with client_patch, blob_patch, pytest.raises(archive.ArchiveError, match="read back differs"):
        archive.run(["activity_logs"], old_days(300), storage=google.storage())
    assert seqs() == list(range(1, 10))  # the 8 rows, and the failed run's entry
    assert ActivityLog.objects.get(chain_seq=9).details["ok"] is False
    assert ArchiveBoundary.objects.count() == 0


def test_the_activity_log_page_shows_the_last_archive_run(media):
    from django.test import Client
    from django.urls import reverse

    from tests.audit.support import make_user

    history(6, old_days(400))
    call_command("archive_audit", "--before", date_of(old_days(300)), "--table", "activity")
    client = Client()
    client.force_login(make_user("viewer@example.com", role="Viewer"))
    page = client.get(reverse("admin:audit_activitylog_changelist"))
    assert page.status_code == 200
    run = ActivityLog.objects.get(action=archive.ARCHIVE_ACTION)
    assert page.context["archive_run"].pk == run.pk
    assert b"audit-archive-ok" in page.content
    assert b"audit.activity_logs #1" in page.content
