"""The schema backend, proved by a chain of migrations on schema-qualified tables.

After each step the database catalog (not Django's introspection, which is part of
what is under test) must match the model state of that step; migrating to zero must
leave nothing behind.
"""

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from portal.db.names import split_table
from tests.db import roles

# Migrations run as the migrator, the owner of every schema (tests/db/roles.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_migrator"),
]

APP = "chainapp"
SCHEMAS = ("chain_a", "chain_b")
# Django's generated names for FK and LIKE indexes end in an 8-hex digest.
AUTO_INDEX = re.compile(r"_[0-9a-f]{8}(_like)?$")


def fetch(sql: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchall()


def execute(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


def chain_names() -> list[str]:
    loader = MigrationLoader(connection)
    return sorted(name for app, name in loader.disk_migrations if app == APP)


def state_models(migration: str):
    loader = MigrationLoader(connection)
    state = loader.project_state((APP, migration))
    return state.apps.get_app_config(APP).get_models()


def catalog(schema: str, table: str) -> dict:
    """What PostgreSQL says about one table."""
    key = {"schema": schema, "table": table}
    columns = {
        row[0]
        for row in fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %(schema)s AND table_name = %(table)s",
            key,
        )
    }
    uniques = {
        (frozenset(row[0]), row[1])
        for row in fetch(
            """
            SELECT array_agg(a.attname::text), i.indpred IS NOT NULL
            FROM pg_index i
            JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey)
            WHERE n.nspname = %(schema)s AND t.relname = %(table)s
              AND i.indisunique AND NOT i.indisprimary
            GROUP BY i.indexrelid, i.indpred
            """,
            key,
        )
    }
    indexes = {
        row[0]
        for row in fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %(schema)s "
            "AND tablename = %(table)s AND indexdef NOT LIKE 'CREATE UNIQUE%%'",
            key,
        )
        if not AUTO_INDEX.search(row[0])
    }
    fks = set(
        fetch(
            """
            SELECT a.attname::text, rn.nspname::text, r.relname::text
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            JOIN pg_class r ON r.oid = c.confrelid
            JOIN pg_namespace rn ON rn.oid = r.relnamespace
            WHERE c.contype = 'f'
              AND c.conrelid = (SELECT oid FROM pg_class WHERE relname = %(table)s
                  AND relnamespace = %(schema)s::regnamespace)
            """,
            key,
        )
    )
    return {"columns": columns, "uniques": uniques, "indexes": indexes, "fks": fks}


def expected(model) -> dict:
    """What the model state says the same table must look like."""
    meta = model._meta
    fields = [f for f in meta.local_fields if f.column]
    uniques = {(frozenset([f.column]), False) for f in fields if f.unique and not f.primary_key}
    for together in meta.unique_together:
        uniques.add((frozenset(meta.get_field(n).column for n in together), False))
    for constraint in meta.constraints:
        cols = frozenset(meta.get_field(n).column for n in constraint.fields)
        uniques.add((cols, constraint.condition is not None))
    fks = set()
    for f in fields:
        if f.remote_field and f.db_constraint:
            schema, table = split_table(f.remote_field.model._meta.db_table)
            fks.add((f.column, schema or "public", table))
    return {
        "columns": {f.column for f in fields},
        "uniques": uniques,
        "indexes": {index.name for index in meta.indexes},
        "fks": fks,
    }


def relations_in_chain_schemas() -> list[tuple]:
    return fetch(
        "SELECT n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%(s)s)",
        {"s": list(SCHEMAS)},
    )


def migrate(target: str) -> None:
    call_command("migrate", APP, target, verbosity=0)
    # Zero drops the schemas with their grants: the application role's back (the admin's
    # deletes of a user read chain_b's rows).
    roles.grant_test_apps()


def test_every_step_of_the_chain_matches_its_models_and_zero_leaves_nothing():
    names = chain_names()
    assert len(names) >= 16
    migrate("zero")
    assert relations_in_chain_schemas() == []
    try:
        for name in names:
            migrate(name)
            for model in state_models(name):
                schema, table = split_table(model._meta.db_table)
                assert schema is not None, table  # the chain's tables are schema-qualified
                assert catalog(schema, table) == expected(model), f"after {name}: {table}"
        # And backwards, one step at a time: each reverse must also match.
        for name in reversed(names[:-1]):
            migrate(name)
            for model in state_models(name):
                schema, table = split_table(model._meta.db_table)
                assert schema is not None, table
                assert catalog(schema, table) == expected(model), f"back to {name}: {table}"
        migrate("zero")
        assert relations_in_chain_schemas() == []
        schemas = fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%(s)s)", {"s": list(SCHEMAS)}
        )
        assert schemas == []
    finally:
        migrate(names[-1])


def test_the_final_table_moved_schema_and_kept_its_data_path():
    migrate("0012_rename_field")
    try:
        execute(
            "INSERT INTO \"chain_a\".\"item\" (name, code, qty, flag) VALUES ('a', 'b', 1, true)"
        )
        migrate("0014_move_schema")
        assert fetch('SELECT name, code FROM "chain_b"."thing"') == [("a", "b")]
        assert fetch('SELECT to_regclass(\'"chain_a"."item"\')') == [(None,)]
    finally:
        migrate(chain_names()[-1])


def test_no_app_has_pending_model_changes():
    """The real apps and the chain (whose models.py is its final state) are in sync."""
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_inspectdb_keeps_schema_and_foreign_keys():
    out = io.StringIO()
    call_command("inspectdb", 'core"."execution_history', 'core"."projects', stdout=out)
    text = out.getvalue()
    assert 'db_table = \'core""."execution_history\'' in text or (
        "db_table = 'core\".\"execution_history'" in text
    )
    assert "session = models.ForeignKey('CoreCodexSessions'" in text
    assert "owner = models.ForeignKey('AuthUsers'" in text
    assert "company = models.ForeignKey('AuthCompanies'" in text


def test_sqlflush_truncates_tables_in_every_app_schema():
    out = io.StringIO()
    call_command("sqlflush", stdout=out)
    sql = out.getvalue()
    for table in ('"core"."execution_history"', '"auth"."users"', '"analytics"."system_metrics"'):
        assert table in sql
