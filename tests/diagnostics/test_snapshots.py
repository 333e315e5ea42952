"""``manage.py snapshot_stats``: history for the charts and Metabase, safe for a scheduler."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from psycopg import sql

from diagnostics.models import QueryStatSnapshot, StatsSnapshot, TableSizeSnapshot
from tests.diagnostics.support import committed, connect, scalar, unique

pytestmark = pytest.mark.django_db


def snapshot(*args: str) -> str:
    out = StringIO()
    call_command("snapshot_stats", "--database", "default", *args, stdout=out)
    return out.getvalue()


def pgss_calls(table: str) -> int:
    with connect() as conn:
        calls = scalar(
            conn,
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND query LIKE %s",
            (f"%{table}%",),
        )
    return int(calls)


def test_snapshots_store_deltas_and_never_reset_pg_stat_statements():
    table = unique("diag_snap")
    t = sql.Identifier(table)
    probe = sql.SQL("SELECT count(*) FROM {} WHERE id > %s").format(t)
    probe_text = f'FROM "{table}" WHERE id > $1'
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int)").format(t),
            sql.SQL("INSERT INTO {} SELECT generate_series(1, 5000)").format(t),
        ],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(t)],
    ):
        with connect() as conn:
            conn.execute(probe, (0,))  # known to pg_stat_statements before the first snapshot
        out = snapshot("--min-interval", "0")
        assert "snapshot" in out and "statement rows" in out
        first = StatsSnapshot.objects.get()
        assert first.database_size_bytes > 0
        assert first.connections_total >= 1
        assert first.max_connections > 0
        assert first.xact_commit is not None
        sizes = TableSizeSnapshot.objects.filter(snapshot=first, table_name=table)
        assert sizes.get().total_bytes > 0 and sizes.get().row_estimate >= 0
        baseline = QueryStatSnapshot.objects.get(snapshot=first, query__contains=probe_text)
        assert (baseline.calls, baseline.calls_cumulative) == (0, 1)  # a baseline, no delta

        with connect() as conn:
            for n in range(5):
                conn.execute(probe, (n,))
        snapshot("--min-interval", "0")
        second = StatsSnapshot.objects.order_by("-captured_at").first()
        row = QueryStatSnapshot.objects.get(snapshot=second, query__contains=probe_text)
        assert (row.calls, row.calls_cumulative) == (5, 6)
        assert row.rows == 5
        assert row.total_exec_time_ms >= 0

        with connect() as conn:
            for n in range(3):
                conn.execute(probe, (n,))
        snapshot("--min-interval", "0")
        third = StatsSnapshot.objects.order_by("-captured_at").first()
        row = QueryStatSnapshot.objects.get(snapshot=third, query__contains=probe_text)
        assert (row.calls, row.calls_cumulative) == (3, 9)
        # Snapshots read the statistics; they never reset them.
        assert pgss_calls(probe_text) == 9
        # An idle statement adds no row to later snapshots.
        snapshot("--min-interval", "0")
        fourth = StatsSnapshot.objects.order_by("-captured_at").first()
        assert not QueryStatSnapshot.objects.filter(snapshot=fourth, query__contains=probe_text)


def test_a_second_run_within_the_minimum_interval_is_skipped():
    snapshot("--min-interval", "0")
    out = snapshot("--min-interval", "3600")
    assert "skipped: the last snapshot is" in out
    assert StatsSnapshot.objects.count() == 1


def test_snapshots_older_than_the_retention_are_pruned():
    old = StatsSnapshot.objects.create(
        alias="default",
        database="test",
        captured_at=timezone.now() - dt.timedelta(days=40),
        database_size_bytes=1,
        connections_total=1,
        connections_active=1,
        connections_idle=0,
        connections_idle_in_transaction=0,
        max_connections=100,
    )
    TableSizeSnapshot.objects.create(
        snapshot=old,
        schema_name="core",
        table_name="projects",
        total_bytes=1,
        table_bytes=1,
        index_bytes=0,
        toast_bytes=0,
        row_estimate=0,
    )
    out = snapshot("--min-interval", "0", "--retention-days", "30")
    assert "pruned 1 snapshots older than 30 days" in out
    assert not StatsSnapshot.objects.filter(pk=old.pk).exists()
    assert not TableSizeSnapshot.objects.filter(snapshot_id=old.pk).exists()
    assert StatsSnapshot.objects.count() == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--database", "nope"], "unknown database alias nope"),
        (["--retention-days", "0"], "--retention-days >= 1"),
        (["--min-interval", "-5"], "--min-interval must be >= 0"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("snapshot_stats", *args)


def test_history_draws_charts_on_the_overview_and_space_pages(admin_client):
    snapshot("--min-interval", "0")
    snapshot("--min-interval", "0")
    overview = admin_client.get(reverse("admin:diagnostics")).content.decode()
    assert '<svg class="diag-chart"' in overview
    assert "Connections over time" in overview
    assert "<polyline" in overview
    space = admin_client.get(reverse("admin:diagnostics_space")).content.decode()
    assert "Largest tables over time" in space and "<polyline" in space
    # No inline script or style: the pages work under a strict CSP.
    for text in (overview, space):
        body = text[text.index("<body") :]
        assert "<script>" not in body.replace("<script src", "")
        assert " style=" not in body
        assert " onclick=" not in body


def test_snapshots_work_for_each_role(diag_target):
    out = StringIO()
    call_command(
        "snapshot_stats", "--database", diag_target.alias, "--min-interval", "0", stdout=out
    )
    snap = StatsSnapshot.objects.get(alias=diag_target.alias)
    with connect() as conn:
        assert snap.database == conn.info.dbname
    assert snap.database_size_bytes > 0
    assert "snapshot" in out.getvalue()
