"""The audit chain under concurrent writers, across its migration, and its command.

These tests commit (many connections, a migration), so each runs as a transactional
test: the suite's flush empties the audit tables afterwards.
"""

from __future__ import annotations

import random
import threading
import uuid
from unittest import mock

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit import chain
from audit.models import ActivityLog
from audit.services import record_activity
from tests.audit.test_chain import required
from tests.diagnostics.support import connect

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 8
TRANSACTIONS = 15


def _insert(conn, action: str) -> None:
    conn.execute(
        "INSERT INTO audit.activity_logs (id, action, actor_email, resource_type, resource_id,"
        " object_repr, user_agent, request_id) VALUES (%s, %s, '', 'tests.writer', '', '', '', '')",
        [uuid.uuid4(), action],
    )


def test_many_concurrent_writers_leave_one_gapless_verified_chain():
    committed: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        rng = random.Random(n)
        kept = 0
        try:
            with connect(autocommit=False, application_name=f"chain-writer-{n}") as conn:
                start.wait(timeout=30)
                for t in range(TRANSACTIONS):
                    rows = rng.randint(1, 3)
                    for r in range(rows):
                        _insert(conn, f"w{n}-t{t}-r{r}")
                    if rng.random() < 0.2:
                        conn.rollback()  # a rolled-back insert must leave no gap
                    else:
                        conn.commit()
                        kept += rows
        except BaseException as exc:
            errors.append(exc)
        committed.append(kept)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    written = ActivityLog.objects.filter(resource_type="tests.writer").count()
    assert written == sum(committed) > WRITERS
    seqs = list(ActivityLog.objects.order_by("chain_seq").values_list("chain_seq", flat=True))
    assert seqs == list(range(1, ActivityLog.objects.count() + 1))
    result = chain.verify(check_anchor=False)
    assert result.ok, result.problem
    assert result.rows["activity_logs"] == ActivityLog.objects.count()


@pytest.mark.usefixtures("default_as_migrator")  # migrate runs as the migrator
def test_the_migration_chains_the_rows_that_existed_before_it():
    call_command("migrate", "audit", "0002", verbosity=0)
    try:
        with connection.cursor() as cursor:
            # rows as the old schema had them: client-chosen times, out of insertion order
            for minute in (30, 10, 20, 10):
                cursor.execute(
                    "INSERT INTO audit.activity_logs (id, action, actor_email, resource_type,"
                    " resource_id, object_repr, user_agent, request_id, created_at)"
                    " VALUES (gen_random_uuid(), %s, '', 'tests.old', '', '', '', '',"
                    " '2026-01-01 10:00+00'::timestamptz + make_interval(mins => %s))",
                    [f"old-{minute}", minute],
                )
            cursor.execute(
                "INSERT INTO audit.security_events (id, event_type, email_attempted, user_agent,"
                " details) VALUES (gen_random_uuid(), 'logout', '', '', '{}')"
            )
    finally:
        call_command("migrate", "audit", verbosity=0)
    old = list(
        ActivityLog.objects.filter(resource_type="tests.old")
        .order_by("chain_seq")
        .values_list("created_at", "id")
    )
    assert len(old) == 4
    assert old == sorted(old)  # chained in (created_at, id) order
    record_activity(action="after the migration")
    result = chain.verify(check_anchor=False)
    assert result.ok, result.problem
    assert result.heads["activity_logs"].seq == ActivityLog.objects.count()
    assert result.heads["security_events"].seq >= 1
    # and the append-only guard is back on after the backfill's UPDATE
    with pytest.raises(Exception, match="append-only"):
        ActivityLog.objects.filter(resource_type="tests.old").update(action="x")


# --- the command -----------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return tmp_path


def test_the_command_anchors_to_media_root_and_records_each_run(media, capsys):
    record_activity(action="something")
    call_command("verify_audit_chain", "--anchor")
    files = list((media / chain.ANCHOR_DIR).rglob("*.json"))
    assert len(files) == 1
    runs = ActivityLog.objects.filter(resource_type=chain.VERIFICATION).order_by("chain_seq")
    assert [r.details["ok"] for r in runs] == [True]
    assert runs[0].details["anchor_written"].endswith(files[0].name)
    anchored = runs[0].details["heads"]["activity_logs"]
    # the anchor is the head before the run's own entry
    assert anchored["seq"] == required(runs[0].chain_seq) - 1
    call_command("verify_audit_chain")
    second = ActivityLog.objects.filter(resource_type=chain.VERIFICATION).order_by("chain_seq")
    assert required(second.last()).details["anchor"].endswith(files[0].name)


def test_the_command_exits_1_naming_the_broken_link_and_records_it(media):
    rows = [required(record_activity(action=f"e{i}")) for i in range(3)]
    guards = ("activity_logs_no_rewrite", "activity_logs_archive_only")
    with connect() as conn:
        for guard in guards:
            conn.execute(f"ALTER TABLE audit.activity_logs DISABLE TRIGGER {guard}")
        try:
            conn.execute("DELETE FROM audit.activity_logs WHERE id = %s", [rows[1].pk])
        finally:
            for guard in guards:
                conn.execute(f"ALTER TABLE audit.activity_logs ENABLE ALWAYS TRIGGER {guard}")
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit_chain")
    assert caught.value.returncode == 1
    seq = ActivityLog.objects.values_list("chain_seq", flat=True).get(pk=rows[2].pk)
    message = str(caught.value)
    assert f"audit.activity_logs seq {seq} id {rows[2].pk}" in message
    assert "rows removed" in message
    run = ActivityLog.objects.filter(resource_type=chain.VERIFICATION).get()
    assert run.details["ok"] is False and str(rows[2].pk) in run.details["problem"]


def test_the_activity_log_page_shows_the_last_verification(media):
    from tests.audit.support import make_user

    user = make_user("viewer@example.com", role="Viewer")
    call_command("verify_audit_chain")
    client = Client()
    client.force_login(user)
    page = client.get(reverse("admin:audit_activitylog_changelist"))
    assert page.status_code == 200
    run = ActivityLog.objects.filter(resource_type=chain.VERIFICATION).get()
    assert page.context["chain_verification"].pk == run.pk
    assert b"Audit chain verified" in page.content
    assert b"audit-chain-ok" in page.content
    events = client.get(reverse("admin:audit_securityevent_changelist"))
    assert b"Audit chain verified" in events.content


def test_the_page_shows_the_latest_of_several_runs(media):
    """Two verifications in one transaction share created_at (the database's now()):
    the later one, by its place in the chain, is the one shown."""
    from tests.audit.support import make_user

    call_command("verify_audit_chain")
    call_command("verify_audit_chain")
    runs = list(ActivityLog.objects.filter(resource_type=chain.VERIFICATION).order_by("chain_seq"))
    assert len(runs) == 2
    client = Client()
    client.force_login(make_user("viewer@example.com", role="Viewer"))
    page = client.get(reverse("admin:audit_activitylog_changelist"))
    assert page.context["chain_verification"].pk == runs[-1].pk
    assert page.context["archive_run"] is None


def test_the_anchor_goes_to_google_cloud_storage_through_django_storages(db):
    """Only Google's client library is mocked (its ``Client`` and ``Blob``, as
    django-storages imports them): GoogleCloudStorage runs for real above them, against
    an in-memory bucket."""
    from storages.backends.gcloud import GoogleCloudStorage

    blobs: dict[str, bytes] = {}

    class Blob:
        def __init__(self, name, bucket=None, chunk_size=None, **kwargs):
            self.name = name
            self.size = len(blobs.get(name, b""))
            self.content_type = "application/json"

        def upload_from_file(self, fh, rewind=False, content_type=None, **kwargs):
            if rewind:
                fh.seek(0)
            blobs[self.name] = fh.read()

        def download_to_file(self, fh, **kwargs):
            fh.write(blobs[self.name])

        def exists(self, client=None):
            return self.name in blobs

        def reload(self, **kwargs):
            pass

    class Iterator:
        def __init__(self, prefix, delimiter):
            names = [n for n in blobs if n.startswith(prefix)]
            self._items = [Blob(n) for n in names if delimiter not in n[len(prefix) :]]
            self.prefixes = set()
            self.pages = [self._items]

        def __iter__(self):
            return iter(self._items)

    class Bucket:
        name = "audit-anchors-bucket"

        def blob(self, name, chunk_size=None, **kwargs):
            return Blob(name)

        def get_blob(self, name, **kwargs):
            return Blob(name) if name in blobs else None

        def list_blobs(self, prefix="", delimiter=None, **kwargs):
            return Iterator(prefix, delimiter or "\0")

    client = mock.MagicMock()
    client.bucket.return_value = Bucket()
    with (
        mock.patch("storages.backends.gcloud.Client", return_value=client),
        mock.patch("storages.backends.gcloud.Blob", Blob),
    ):
        storage = GoogleCloudStorage(bucket_name="audit-anchors-bucket", file_overwrite=False)
        record_activity(action="to the bucket")
        result = chain.verify(storage=storage)
        assert result.ok and result.anchor is None
        name = chain.write_anchor(result, storage=storage)
        assert name in blobs and name.startswith(chain.anchor_prefix())
        assert chain.latest_anchor(storage=storage)[0] == name
        assert chain.verify(storage=storage).anchor == name


def test_the_local_anchor_reads_back_what_it_wrote(db, tmp_path):
    storage = FileSystemStorage(location=tmp_path)
    record_activity(action="local")
    result = chain.verify(storage=storage)
    name = chain.write_anchor(result, storage=storage)
    body = required(chain.latest_anchor(storage=storage)[1])
    assert body["heads"]["activity_logs"]["seq"] == ActivityLog.objects.count()
    assert (tmp_path / name).is_file()
