"""The Indexes page's judgements against what PostgreSQL can actually use: duplicates
that count sort order, NULLS order, operator class, collation, predicate, expressions
and INCLUDE columns; invalid indexes that are only being built; failed UNIQUE builds."""

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from diagnostics.queries import indexes, overview
from tests.diagnostics.support import committed, connect, running, unique, wait_for

# The scratch schemas these tests make in their transaction need CREATE on the
# database: the migrator's (tests/db/roles.py), not the application role's.
pytestmark = pytest.mark.usefixtures("default_as_migrator")


def execute(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def duplicates_on(table: str) -> dict[str, indexes.DuplicateIndex]:
    result = indexes.duplicate_indexes("default")
    assert result.ok, result.error
    return {d.name: d for d in result if d.table_name == table}


@pytest.fixture
def table():
    execute(
        "CREATE SCHEMA dup_test",
        "CREATE TABLE dup_test.t (a int, b int, c text, x int, y int, z int)",
    )
    return "t"


def test_sort_order_nulls_order_opclass_collation_and_predicate_make_different_indexes(table):
    execute(
        "CREATE INDEX t_ab ON dup_test.t (a, b)",
        "CREATE INDEX t_ab_desc ON dup_test.t (a, b DESC)",
        "CREATE INDEX t_ab_nulls_first ON dup_test.t (a, b NULLS FIRST)",
        "CREATE INDEX t_c ON dup_test.t (c)",
        "CREATE INDEX t_c_pattern ON dup_test.t (c text_pattern_ops)",
        'CREATE INDEX t_c_c ON dup_test.t (c COLLATE "C")',
        "CREATE INDEX t_c_partial ON dup_test.t (c) WHERE a > 0",
        "CREATE INDEX t_lower_c ON dup_test.t (lower(c))",
    )
    assert duplicates_on(table) == {}


def test_a_prefix_with_the_same_order_is_redundant_and_an_exact_copy_is_named(table):
    execute(
        "CREATE INDEX t_a ON dup_test.t (a)",
        "CREATE INDEX t_ab ON dup_test.t (a, b)",
        "CREATE INDEX t_ab_copy ON dup_test.t (a, b)",
        "CREATE INDEX t_ab_desc ON dup_test.t (a DESC, b)",
    )
    found = duplicates_on(table)
    assert set(found) == {"t_a", "t_ab_copy"}
    assert found["t_a"].reason == "prefix"
    assert found["t_ab_copy"].reason == "same" and found["t_ab_copy"].covered_by == "t_ab"


def test_include_columns_cover_a_plain_index_but_not_the_other_way(table):
    execute(
        "CREATE INDEX t_x ON dup_test.t (x)",
        "CREATE INDEX t_x_incl_y ON dup_test.t (x) INCLUDE (y)",
        "CREATE INDEX t_z_incl_y ON dup_test.t (z) INCLUDE (y)",
        "CREATE INDEX t_z_incl_x ON dup_test.t (z) INCLUDE (x)",
    )
    found = duplicates_on(table)
    assert set(found) == {"t_x"}
    assert found["t_x"].covered_by == "t_x_incl_y"
    assert found["t_x"].reason == "include"


def test_a_unique_index_is_only_covered_by_a_unique_index_on_the_same_keys(table):
    execute(
        "CREATE UNIQUE INDEX t_a_unique ON dup_test.t (a)",
        "CREATE INDEX t_ab ON dup_test.t (a, b)",
        "CREATE UNIQUE INDEX t_x_unique ON dup_test.t (x)",
        "CREATE UNIQUE INDEX t_x_unique_incl ON dup_test.t (x) INCLUDE (y)",
    )
    found = duplicates_on(table)
    assert set(found) == {"t_x_unique"}
    assert found["t_x_unique"].covered_by == "t_x_unique_incl"


def test_an_index_being_built_concurrently_is_not_invalid_but_a_failed_unique_build_is(
    diag_target,
):
    """A build in progress has indisvalid = false like a failed one; the progress view
    (and, for roles that cannot see its details, the building session's locks in
    pg_locks) tell them apart. The failed UNIQUE build's fix says the duplicates must
    go first and gives the query that lists them."""
    name = unique("cic")
    t = sql.Identifier(name)
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int, v int)").format(t),
            sql.SQL("INSERT INTO {} SELECT g, g % 3 FROM generate_series(1, 30) g").format(t),
            sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(t),
        ],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(t)],
    ):
        with connect() as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} (v)").format(
                    sql.Identifier(f"{name}_v_failed"), t
                )
            )
        writer = connect(autocommit=False)
        writer.execute(sql.SQL("INSERT INTO {} VALUES (0, 0)").format(t))
        try:
            build = sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} (id)").format(
                sql.Identifier(f"{name}_id_building"), t
            )
            with running(build):
                with connect() as watcher:
                    wait_for(
                        lambda: watcher.execute(
                            "SELECT 1 FROM pg_class WHERE relname = %s", (f"{name}_id_building",)
                        ).fetchone(),
                        what="the concurrent build's catalog entry",
                    )
                invalid = {i.name: i for i in indexes.invalid_indexes(diag_target.alias)}
                building = invalid[f"{name}_id_building"]
                failed = invalid[f"{name}_v_failed"]
                if diag_target.kind == "nothing":
                    # The progress view hides which index: both are "possibly being built".
                    assert building.possibly_being_built and failed.possibly_being_built
                    assert not building.being_built and not failed.being_built
                else:
                    assert building.being_built and not building.possibly_being_built
                    assert not failed.being_built and not failed.possibly_being_built
                assert failed.is_unique
                assert failed.duplicates_query is not None
                with connect() as conn:
                    groups = conn.execute(failed.duplicates_query).fetchall()
                assert sorted(g[0] for g in groups) == [0, 1, 2]
                with connect() as conn:  # the catalog's answer, read as the superuser
                    failed_total, building_total = conn.execute(  # type: ignore[misc]
                        "SELECT count(*) FILTER (WHERE p.pid IS NULL),"
                        " count(*) FILTER (WHERE p.pid IS NOT NULL)"
                        " FROM pg_index i LEFT JOIN pg_stat_progress_create_index p"
                        " ON p.index_relid = i.indexrelid WHERE NOT i.indisvalid"
                    ).fetchone()
                counts = overview.attention(
                    diag_target.alias, long_seconds=60, idle_seconds=300
                ).first()
                assert counts is not None
                if diag_target.kind == "nothing":
                    assert counts.indexes_possibly_being_built == 2
                    assert counts.invalid_indexes == failed_total - 1
                else:
                    assert counts.invalid_indexes == failed_total
                    assert counts.indexes_being_built == building_total
        finally:
            writer.rollback()
            writer.close()


def test_the_projects_own_indexes_are_never_offered_for_a_hand_drop(client, django_user_model):
    """core.exec_history_document_idx (full-text search runs on it) is unused on a fresh
    database: the page says a migration declares it and gives the migration to write,
    while an index made by hand next to it gets its DROP statement."""
    import html

    from django.contrib.auth.models import Permission
    from django.urls import reverse

    from diagnostics import ownership

    execute("CREATE INDEX hand_made_unused_idx ON core.execution_history (created_at, id)")
    # Other tests search the executions: on this database the index is unused again.
    # Statistics are not transactional; resetting them is the superuser's (its own
    # connection).
    with connect() as admin:
        admin.execute(
            "SELECT pg_stat_reset_single_table_counters('core.exec_history_document_idx'::regclass)"
        )
    user = django_user_model.objects.create_user(
        email="dba@example.com", password="not-used-here-123", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename="view_diagnostics"))
    client.force_login(user)
    response = client.get(reverse("admin:diagnostics_indexes"), {"db": "default"})
    text = html.unescape(response.content.decode())
    declared = ownership.declared_index("default", "core", "exec_history_document_idx")
    assert declared is not None and declared.migration.startswith("0004")

    def row(anchor: str) -> str:
        at = text.index(anchor)
        return text[text.rindex("<tr", 0, at) : text.index("</tr>", at)]

    ours = row('id="unused-core-exec_history_document_idx"')
    assert f"declared by {declared.model} (migration core.{declared.migration})" in ours
    assert "DROP INDEX" not in ours
    assert "RemoveIndexConcurrently(model_name='executionhistory'" in ours
    hand = row('id="unused-core-hand_made_unused_idx"')
    assert "made by hand" in hand
    assert "DROP INDEX CONCURRENTLY core.hand_made_unused_idx;" in hand


def test_every_declared_index_of_the_app_schemas_exists_with_that_name():
    """The declared names are PostgreSQL's: each one is in pg_indexes of the migrated
    test database, and every index of the app schemas is either declared or listed as
    hand-made (none here)."""
    from diagnostics import ownership

    declared = {(o.schema, o.name) for o in ownership.declared_objects() if o.kind == "index"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname, indexname FROM pg_indexes"
            " WHERE schemaname IN ('core', 'auth', 'analytics', 'audit')"
        )
        live = set(cursor.fetchall())
    app_declared = {d for d in declared if d[0] in {"core", "auth", "analytics", "audit"}}
    assert app_declared - live == set()
    assert live - app_declared == set()
