"""Which migration declares each object (portal/db/declared.py), checked against the
migration files themselves and against the catalog of the migrated test database."""

from __future__ import annotations

import importlib
import inspect

import pytest
from django.db import connection

from portal.db import declared

pytestmark = pytest.mark.django_db


def objects() -> dict[tuple[str, str, str], declared.Declared]:
    return declared.declaration().objects


def source(app_label: str, migration: str) -> str:
    from django.apps import apps

    package = apps.get_app_config(app_label).name
    module = importlib.import_module(f"{package}.migrations.{migration}")
    return inspect.getsource(module)


def test_every_named_object_is_spelled_out_in_the_migration_credited_with_it():
    """An independent answer: the name is in that migration's file (Meta.indexes,
    constraints, RunSQL), for every explicitly named index and constraint of every app.
    (Triggers are left out: audit builds their names per table in Python.)"""
    named = [o for o in objects().values() if o.explicit and o.kind in ("index", "constraint")]
    assert len(named) > 10
    missing = [o for o in named if o.name not in source(o.app_label, o.migration)]
    assert missing == []


def test_a_temporary_table_of_a_runsql_is_not_declared():
    """audit.0004 fills its hash chain through CREATE TEMPORARY TABLE ... DROP TABLE."""
    assert not [o for o in objects().values() if o.name.startswith("chain_backfill_")]
    created, _ = declared.objects_in_sql("CREATE TEMPORARY TABLE t (id int PRIMARY KEY)")
    assert created == []


def test_an_unnamed_composite_primary_key_gets_postgresqls_name():
    """Django writes a CompositePrimaryKey as an unnamed table constraint; PostgreSQL
    names it ``<table>_pkey`` (checked against the catalog by the test below)."""
    created, _ = declared.objects_in_sql(
        'CREATE TABLE "s"."hours" ("hour" timestamptz, "status" text,'
        ' PRIMARY KEY ("hour", "status"))'
    )
    assert {(c.kind, c.name, tuple(c.columns)) for c in created if c.kind != "table"} == {
        ("index", "hours_pkey", ("hour", "status")),
        ("constraint", "hours_pkey", ("hour", "status")),
    }


def test_a_change_the_database_never_sees_does_not_move_an_object():
    """The translation migrations relabel every field (verbose names only): the objects
    of those fields stay with the migration that made them."""
    found = objects()
    assert found[("index", "core", "projects_pkey")].migration == "0001_initial"
    assert found[("constraint", "auth", "users_email_key")].migration == "0001_initial"
    assert not [o for o in found.values() if "translatable_names" in o.migration]


def test_a_foreign_key_added_not_valid_belongs_to_that_migration_and_model():
    found = objects()
    fk = found[("constraint", "lockapp", "alpha_beta_id_bcf4595e_fk_beta_id")]
    assert (fk.migration, fk.model, fk.table, fk.explicit) == (
        "0008_foreign_keys_not_valid",
        "lockapp.Alpha",
        "alpha",
        False,
    )
    assert found[("table", "lockapp", "alpha")].migration == "0001_initial"


def test_many_to_many_tables_belong_to_their_own_model_label():
    through = objects()[("index", "auth", "users_groups_pkey")]
    assert (through.model, through.table, through.app_label) == (
        "accounts.User_groups",
        "users_groups",
        "accounts",
    )


def test_every_declared_constraint_of_the_app_schemas_is_in_the_catalog():
    """The declared names are PostgreSQL's: each declared constraint is in pg_constraint
    and each of the catalog's is declared. Primary keys go by table: a renamed table
    keeps its old ``_pkey`` name (chainapp's), a fresh database names it after the new one."""
    schemas = declared.declaration().schemas
    found = [o for o in objects().values() if o.kind == "constraint" and o.schema in schemas]
    primary = {(o.schema, o.table) for o in found if o.name == f"{o.table}_pkey"}
    others = {(o.schema, o.name) for o in found if o.name != f"{o.table}_pkey"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, t.relname, c.conname, c.contype = 'p' FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = ANY(%(s)s) AND c.contype IN ('c', 'f', 'p', 'u', 'x')",
            {"s": sorted(schemas)},
        )
        rows = cursor.fetchall()
    assert {(schema, table) for schema, table, _name, is_pk in rows if is_pk} == primary
    assert {(schema, name) for schema, _table, name, is_pk in rows if not is_pk} == others
