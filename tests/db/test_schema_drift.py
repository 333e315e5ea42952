"""The drift check: hand-made and missing objects, changed columns, unapplied
migrations, against the real catalog of the test database."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

from portal.db import declared, drift

# Migrations run as the migrator, the owner of every schema (tests/db/roles.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_migrator"),
]


def execute(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def lines() -> list[str]:
    return [d.line() for d in drift.compare(connection)]


def run_command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("schema_drift", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_a_migrated_database_has_no_drift():
    assert drift.compare(connection) == []
    assert run_command() == (0, "No drift: the database matches the migrations.\n")


def test_hand_made_and_missing_objects_and_changed_columns_are_each_one_line():
    execute(
        "CREATE INDEX hand_projects_name_idx ON core.projects (name)",
        "DROP INDEX core.mcp_cache_tool_idx",
        "ALTER TABLE core.codex_sessions ADD COLUMN gateway_extra text",
        "ALTER TABLE core.codex_sessions ALTER COLUMN metadata DROP DEFAULT",
        "ALTER TABLE core.mcp_cache ADD CONSTRAINT hand_check CHECK (true) NOT VALID",
        "CREATE TABLE core.hand_table (id int)",
    )
    try:
        found = lines()
        assert (
            "hand-made index: core.projects hand_projects_name_idx - CREATE INDEX "
            "hand_projects_name_idx ON core.projects USING btree (name)" in found
        )
        assert any(
            line.startswith("missing index: core.mcp_cache mcp_cache_tool_idx - CREATE INDEX")
            for line in found
        )
        assert "hand-made column: core.codex_sessions gateway_extra - type text" in found
        assert any(
            line.startswith("column default: core.codex_sessions metadata (migrations: '{}'")
            and line.endswith("database: None)")
            for line in found
        ), found
        assert any(
            line.startswith("hand-made constraint: core.mcp_cache hand_check") for line in found
        )
        assert "hand-made table: core.hand_table" in found
        assert len(found) == 6, found
        code, out = run_command("--json")
        assert code == 1
        kinds = sorted(d["kind"] for d in json.loads(out))
        assert kinds == sorted(
            [
                "hand-made index",
                "missing index",
                "hand-made column",
                "column default",
                "hand-made constraint",
                "hand-made table",
            ]
        )
    finally:
        execute(
            "DROP TABLE core.hand_table",
            "ALTER TABLE core.mcp_cache DROP CONSTRAINT hand_check",
            "ALTER TABLE core.codex_sessions ALTER COLUMN metadata SET DEFAULT '{}'::jsonb",
            "ALTER TABLE core.codex_sessions DROP COLUMN gateway_extra",
            "CREATE INDEX mcp_cache_tool_idx ON core.mcp_cache (tool_name, cached_at DESC)",
            "DROP INDEX core.hand_projects_name_idx",
        )
    assert drift.compare(connection) == []


def test_a_changed_index_definition_and_column_type_are_named():
    execute(
        "DROP INDEX core.mcp_cache_tool_idx",
        "CREATE INDEX mcp_cache_tool_idx ON core.mcp_cache (tool_name)",
        "ALTER TABLE core.execution_hours ALTER COLUMN executions TYPE numeric",
    )
    try:
        found = lines()
        assert any(
            line.startswith("index definition: core.mcp_cache mcp_cache_tool_idx") for line in found
        )
        assert any(
            line.startswith("column type: core.execution_hours executions (migrations: ")
            and "database: numeric)" in line
            for line in found
        ), found
    finally:
        execute(
            "ALTER TABLE core.execution_hours ALTER COLUMN executions TYPE bigint",
            "DROP INDEX core.mcp_cache_tool_idx",
            "CREATE INDEX mcp_cache_tool_idx ON core.mcp_cache (tool_name, cached_at DESC)",
        )


def test_an_unapplied_migration_is_drift():
    call_command("migrate", "lockapp", "0005", verbosity=0)
    try:
        found = lines()
        assert "unapplied migration: lockapp.0006_validate_counter_check" in found
        assert run_command()[0] == 1
    finally:
        call_command("migrate", "lockapp", verbosity=0)


def test_declared_objects_name_the_migration_that_made_each():
    objects = {(o.kind, o.schema, o.name): o for o in declared.declared_objects()}
    index = objects[("index", "core", "exec_history_time_idx")]
    assert (index.app_label, index.migration, index.table) == (
        "core",
        "0003_admin_list_indexes",
        "execution_history",
    )
    assert objects[("index", "core", "execution_history_pkey")].migration == "0001_initial"
    assert objects[("view", "analytics", "daily_model_usage")].migration == "0004_metabase_views"
    assert objects[("trigger", "audit", "activity_logs_no_rewrite")].app_label == "audit"
    assert objects[("constraint", "auth", "users_email_key")].table == "users"
    # Replaced indexes are no longer declared (0004 dropped them).
    assert ("index", "core", "exec_history_created_idx") not in objects
    assert declared.declared_index("core", "exec_history_time_idx") == index
    # Every index of the app schemas in the catalog is declared: none made by hand.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname, indexname FROM pg_indexes "
            "WHERE schemaname IN ('core', 'auth', 'audit', 'analytics')"
        )
        live = cursor.fetchall()
    assert live
    assert [row for row in live if ("index", *row) not in objects] == []


def test_postgresqls_names_for_unnamed_constraints():
    """Checked against the names PostgreSQL itself gives, long names included."""
    table, column = "t" * 40, "c" * 40
    execute(f"CREATE TABLE public.{table} ({column} int CHECK ({column} > 0) UNIQUE)")
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname, contype FROM pg_constraint WHERE conrelid = %(t)s::regclass",
                {"t": f"public.{table}"},
            )
            names = {kind: name for name, kind in cursor.fetchall()}
    finally:
        execute(f"DROP TABLE public.{table}")
    assert declared.make_object_name(table, column, "check") == names["c"]
    assert declared.make_object_name(table, column, "key") == names["u"]
    assert declared.make_object_name("users", "email", "key") == "users_email_key"
    assert declared.make_object_name("users", None, "pkey") == "users_pkey"
