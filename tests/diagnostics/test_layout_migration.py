"""A database migrated before the diagnostics models left the analytics app migrates
forward cleanly: same tables (same catalog objects, same rows), and the permissions,
with the groups and users holding them, now under the diagnostics app.

The old layout is reached by unapplying diagnostics 0001 (and analytics 0005, which
depends on it): what is left is exactly what an old database holds, analytics up to
0004 with the analytics content types and permissions.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import User
from diagnostics.models import QueryStatSnapshot, StatsSnapshot, TableSizeSnapshot

pytestmark = pytest.mark.django_db(transaction=True)

OLD_LAYOUT = [("analytics", "0004_metabase_views"), ("diagnostics", None)]
MOVED = ("diagnostics", "statssnapshot", "tablesizesnapshot", "querystatsnapshot")
NEW_MIGRATIONS = {("diagnostics", "0001_initial"), ("analytics", "0005_diagnostics_models_moved")}


def migrate(targets=None) -> set[tuple[str, str]]:
    """Migrate to targets (default: the latest); return the applied migrations."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()
    return set(MigrationExecutor(connection).loader.applied_migrations)


def catalog() -> dict[str, tuple[int, int, str]]:
    """Every relation of the analytics schema (tables, indexes, sequences, views):
    oid and relfilenode tell whether it is the same object, not rewritten."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.oid::bigint, c.relfilenode::bigint, c.relkind "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'analytics'"
        )
        return {name: (oid, node, kind) for name, oid, node, kind in cursor.fetchall()}


def content_types(app_label: str) -> dict[str, int]:
    rows = ContentType.objects.filter(app_label=app_label, model__in=MOVED)
    return dict(rows.values_list("model", "id"))


def holds(group: Group) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(group=group).select_related("content_type")
    }


@pytest.fixture
def old_database():
    applied = migrate(OLD_LAYOUT)
    try:
        assert not applied & NEW_MIGRATIONS
        yield
    finally:
        migrate()


def snapshot_rows() -> tuple[int, int, int]:
    snap = StatsSnapshot.objects.create(
        alias="default",
        database="portal",
        database_size_bytes=1234,
        connections_total=3,
        connections_active=1,
        connections_idle=2,
        connections_idle_in_transaction=0,
        max_connections=100,
    )
    table = TableSizeSnapshot.objects.create(
        snapshot=snap,
        schema_name="core",
        table_name="t",
        total_bytes=1,
        table_bytes=1,
        index_bytes=0,
        toast_bytes=0,
        row_estimate=1,
    )
    query = QueryStatSnapshot.objects.create(
        snapshot=snap,
        queryid=42,
        query="SELECT 1",
        calls=1,
        total_exec_time_ms=1.0,
        rows=1,
        calls_cumulative=1,
        total_exec_time_ms_cumulative=1.0,
    )
    return snap.pk, table.pk, query.pk


def test_an_old_database_migrates_forward_keeping_tables_rows_and_grants(old_database):
    # What an old database holds: the models' content types under analytics only.
    old_types = content_types("analytics")
    assert set(old_types) == set(MOVED)
    assert content_types("diagnostics") == {}
    view = Permission.objects.get(content_type__app_label="analytics", codename="view_diagnostics")
    signal = Permission.objects.get(content_type__app_label="analytics", codename="signal_backend")
    reset = Permission.objects.get(
        content_type__app_label="analytics", codename="reset_query_stats"
    )
    group = Group.objects.create(name="Database watchers")
    group.permissions.add(view, signal)
    user = User.objects.create_user(email="dba@example.com", password="x" * 16)
    user.user_permissions.add(reset)
    ids = snapshot_rows()
    before = catalog()
    permission_count = Permission.objects.count()

    applied = migrate()

    assert applied >= NEW_MIGRATIONS
    # The same relations, not re-created nor rewritten, with their rows.
    assert catalog() == before
    assert (
        StatsSnapshot.objects.get().pk,
        TableSizeSnapshot.objects.get().pk,
        QueryStatSnapshot.objects.get().pk,
    ) == ids
    with connection.cursor() as cursor:
        cursor.execute("SELECT database_size_bytes FROM analytics.database_size_history")
        assert cursor.fetchall() == [(1234,)]
    # The content types were renamed in place: same ids, no stale analytics ones.
    assert content_types("diagnostics") == old_types
    assert content_types("analytics") == {}
    # So the very permission rows carry over, and every grant with them.
    assert Permission.objects.count() == permission_count
    assert Permission.objects.get(pk=view.pk).content_type.app_label == "diagnostics"
    assert holds(group) == {"diagnostics.view_diagnostics", "diagnostics.signal_backend"}
    user = User.objects.get(pk=user.pk)  # a fresh permission cache
    assert user.has_perm("diagnostics.reset_query_stats")
    assert not user.has_perm("analytics.reset_query_stats")
    assert not Permission.objects.filter(
        content_type__app_label="analytics", codename__in=["view_diagnostics", "signal_backend"]
    ).exists()


def test_content_types_created_early_under_the_new_label_are_merged(old_database):
    """New code that ran before the migration (creating diagnostics content types and
    permissions on first use) leaves no duplicate behind: the grants end up on one row."""
    old_view = Permission.objects.get(
        content_type__app_label="analytics", codename="view_diagnostics"
    )
    early = ContentType.objects.create(app_label="diagnostics", model="diagnostics")
    new_view = Permission.objects.create(
        content_type=early, codename="view_diagnostics", name="Can view database diagnostics"
    )
    on_old = Group.objects.create(name="Granted before")
    on_old.permissions.add(old_view)
    on_both = Group.objects.create(name="Granted twice")
    on_both.permissions.add(old_view, new_view)

    migrate()

    assert ContentType.objects.filter(app_label="diagnostics", model="diagnostics").count() == 1
    assert content_types("analytics") == {}
    assert set(content_types("diagnostics")) == set(MOVED)
    assert Permission.objects.filter(codename="view_diagnostics").count() == 1
    assert holds(on_old) == {"diagnostics.view_diagnostics"}
    assert holds(on_both) == {"diagnostics.view_diagnostics"}
    # The other permissions of the old content type moved over rather than vanished.
    assert set(
        Permission.objects.filter(content_type__app_label="diagnostics").values_list(
            "codename", flat=True
        )
    ) >= {"view_diagnostics", "signal_backend", "reset_query_stats", "view_statssnapshot"}


def test_the_move_reverses_to_the_old_layout_and_back(old_database):
    assert set(content_types("analytics")) == set(MOVED)
    before = catalog()
    migrate()
    migrate(OLD_LAYOUT)
    assert catalog() == before
    assert set(content_types("analytics")) == set(MOVED)
    assert content_types("diagnostics") == {}
