"""The migration linter: each rule on a migration that breaks it, the safe form that
passes, exemptions, squawk on real SQL, and the project's own migrations clean.

The dangerous migrations are built in memory on top of the real ``core`` state (the
tables of the live database), exactly as a developer's next migration would be.
"""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.core.management import call_command
from django.db import connection, migrations, models
from django.db.migrations.loader import MigrationLoader

from portal.db import lint
from portal.db.operations import AddConstraintNotValid, AddForeignKeyNotValid

pytestmark = pytest.mark.django_db


def core_state():
    loader = MigrationLoader(connection)
    leaf = next(n for a, n in loader.graph.leaf_nodes() if a == "core")
    return loader.project_state(("core", leaf))


def rules_of(operations, atomic: bool = True) -> set[str]:
    migration_class = type(
        "Migration", (migrations.Migration,), {"operations": operations, "atomic": atomic}
    )
    migration = migration_class("9999_next", "core")
    return {rule for rule, _ in lint.django_violations(migration, core_state(), connection)}


def test_a_new_column_with_only_a_python_default_on_a_gateway_table_is_refused():
    """The gateway's INSERT without the new column fails once Django drops the default."""
    op = migrations.AddField("codexsession", "retries", models.IntegerField(default=0))
    assert rules_of([op]) == {"gateway-default"}
    safe = migrations.AddField(
        "codexsession", "retries", models.IntegerField(default=0, db_default=0)
    )
    assert rules_of([safe]) == set()
    nullable = migrations.AddField("codexsession", "note", models.TextField(null=True))
    assert rules_of([nullable]) == set()


def test_an_index_on_an_existing_table_must_be_built_concurrently():
    index = models.Index(fields=["tokens_used"], name="exec_tokens_plain_idx")
    assert rules_of([migrations.AddIndex("executionhistory", index)]) == {
        "index-without-concurrently"
    }
    assert rules_of([migrations.RemoveIndex("executionhistory", "exec_history_time_idx")]) == {
        "index-without-concurrently"
    }
    assert rules_of([AddIndexConcurrently("executionhistory", index)], atomic=False) == set()


def test_an_index_on_a_table_created_in_the_same_migration_is_fine():
    create = migrations.CreateModel(
        "Fresh",
        fields=[("id", models.BigAutoField(primary_key=True)), ("x", models.IntegerField())],
        options={"db_table": 'core"."fresh'},
    )
    index = migrations.AddIndex("fresh", models.Index(fields=["x"], name="fresh_x_idx"))
    assert rules_of([create, index]) == set()


def test_constraints_on_existing_tables_go_not_valid_first():
    check = models.CheckConstraint(condition=models.Q(tokens_used__gte=0), name="tok_pos")
    assert rules_of([migrations.AddConstraint("executionhistory", check)]) == {
        "constraint-validated-in-one-step"
    }
    assert rules_of([AddConstraintNotValid("executionhistory", check)]) == set()
    fk = migrations.AddField(
        "executionhistory",
        "project",
        models.ForeignKey("core.project", null=True, on_delete=models.SET_NULL),
    )
    assert rules_of([fk]) == {"constraint-validated-in-one-step"}
    # The fix names the operation that does it, and it passes.
    fix = lint.RULES["constraint-validated-in-one-step"]
    assert "AddForeignKeyNotValid" in fix and "ValidateForeignKey" in fix
    safe = AddForeignKeyNotValid("executionhistory", "project", fk.field)
    assert rules_of([safe], atomic=False) == set()


def test_an_existing_field_gaining_its_foreign_key_constraint_goes_not_valid_first():
    """``ForeignKey(db_constraint=False)`` then ``AlterField`` to the constraint scans
    the table in one step; ``AddForeignKeyNotValid`` on the existing field does not."""
    state = core_state()
    migrations.AddField(
        "executionhistory",
        "project",
        models.ForeignKey(
            "core.project", null=True, on_delete=models.SET_NULL, db_constraint=False
        ),
    ).state_forwards("core", state)
    field = models.ForeignKey("core.project", null=True, on_delete=models.SET_NULL)

    def rules(operation) -> set[str]:
        migration_class = type("Migration", (migrations.Migration,), {"operations": [operation]})
        migration = migration_class("9999_next", "core")
        return {rule for rule, _ in lint.django_violations(migration, state, connection)}

    assert rules(migrations.AlterField("executionhistory", "project", field)) == {
        "constraint-validated-in-one-step"
    }
    assert rules(AddForeignKeyNotValid("executionhistory", "project", field)) == set()


def test_not_null_and_rewriting_type_changes_are_refused():
    not_null = migrations.AlterField("executionhistory", "response", models.TextField())
    assert rules_of([not_null]) == {"not-null-in-one-step"}
    to_bigint = migrations.AlterField(
        "executionhistory", "tokens_used", models.BigIntegerField(null=True, blank=True)
    )
    assert rules_of([to_bigint]) == {"column-type-rewrite"}
    longer = migrations.AlterField("codexsession", "model", models.CharField(max_length=200))
    assert rules_of([longer]) == set()
    shorter = migrations.AlterField("codexsession", "model", models.CharField(max_length=50))
    assert rules_of([shorter]) == {"column-type-rewrite"}


def test_one_existing_tables_lock_per_transaction():
    two = [
        migrations.AddField("executionhistory", "a", models.TextField(null=True)),
        migrations.AddField("codexsession", "b", models.TextField(null=True)),
    ]
    assert rules_of(two) == {"one-table-lock-per-transaction"}
    assert rules_of(two, atomic=False) == set()


def _relabelled(model: str, field: str, **changes) -> migrations.AlterField:
    """An AlterField of the field as the live state has it, with ``changes`` applied."""
    live = core_state().models[("core", model)].fields[field]
    _, _, args, kwargs = live.deconstruct()
    field_class = type(live)
    return migrations.AlterField(model, field, field_class(*args, **{**kwargs, **changes}))


def test_alterfields_the_database_never_sees_take_no_lock():
    """New verbose names (a translation pass) on many tables, relations included: Django
    sends no SQL for them, so they are not "two tables' locks in one transaction"."""
    labels = [
        _relabelled("executionhistory", "response", verbose_name="resposta"),
        _relabelled("executionhistory", "session", verbose_name="sessão"),
        _relabelled("codexsession", "model", help_text="o modelo", verbose_name="modelo"),
        _relabelled("project", "company", verbose_name="empresa"),
    ]
    assert rules_of(labels) == set()
    # Those that reach the database still count, with the relabelled ones around them.
    longer_model = _relabelled("codexsession", "model", max_length=200)
    assert rules_of([*labels, longer_model]) == set()
    longer_name = _relabelled("project", "name", max_length=300)
    assert rules_of([*labels, longer_model, longer_name]) == {"one-table-lock-per-transaction"}


def test_removing_or_renaming_what_the_gateway_uses_needs_expand_contract():
    assert rules_of([migrations.RemoveField("codexsession", "model")]) == {
        "gateway-expand-contract"
    }
    assert rules_of([migrations.RenameField("codexsession", "model", "llm")]) == {
        "gateway-expand-contract"
    }


@pytest.mark.parametrize(
    ("is_old", "new", "rewrites"),
    [
        ("varchar(10)", "varchar(20)", False),
        ("varchar(20)", "varchar(10)", True),
        ("varchar(20)", "text", False),
        ("integer", "bigint", True),
        ("numeric(10, 2)", "numeric(12, 2)", False),
        ("numeric(10, 2)", "numeric(12, 3)", True),
        ("text", "text", False),
    ],
)
def test_which_type_changes_rewrite(is_old, new, rewrites):
    assert lint._is_rewrite(is_old, new) is rewrites


def test_squawk_reads_the_sql_with_the_project_configuration():
    config = Path(settings.BASE_DIR) / ".squawk.toml"
    sql = {
        ("core", "bad"): 'CREATE INDEX "i" ON "core"."execution_history" ("tokens_used");\n',
        ("core", "good"): 'CREATE INDEX CONCURRENTLY "i" ON "core"."execution_history" ("x");\n',
    }
    found = lint.squawk(sql, config)
    assert {rule for rule, _ in found[("core", "bad")]} == {"require-concurrent-index-creation"}
    assert found[("core", "good")] == []


def test_a_fixture_migration_that_breaks_a_rule_is_reported_with_its_fix():
    violations, _ = lint.lint(connection, apps=["lockapp"], use_squawk=False)
    lines = [v.line() for v in violations]
    assert any(
        line.startswith("lockapp.0002_two_tables_one_transaction: one-table-lock-per-transaction")
        and "Fix:" in line
        for line in lines
    ), lines
    # The foreign keys added NOT VALID and validated apart pass.
    assert not [line for line in lines if line.startswith(("lockapp.0008", "lockapp.0009"))]


def test_an_exemption_needs_a_reason(monkeypatch):
    module = types.ModuleType("fake_migration_module")
    module.LINT_EXEMPT = {"gateway-default": " "}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_migration_module", module)
    migration_class = type(
        "Migration", (migrations.Migration,), {"__module__": "fake_migration_module"}
    )
    with pytest.raises(ValueError, match="non-empty reason"):
        lint.exemptions(migration_class("0001_x", "core"))
    module.LINT_EXEMPT = {"gateway-default": "reviewed: the table is empty"}  # type: ignore[attr-defined]
    assert lint.exemptions(migration_class("0001_x", "core")) == {
        "gateway-default": "reviewed: the table is empty"
    }


# sqlmigrate of a non-atomic migration refuses to run inside the test's transaction.
@pytest.mark.django_db(transaction=True)
def test_the_projects_migrations_are_clean_with_reviewed_exemptions_only():
    out = io.StringIO()
    call_command("lint_migrations", verbosity=2, stdout=out)
    text = out.getvalue()
    assert "Migrations lint clean" in text
    assert "exempt: core.0004_search_document_covering_indexes: adding-field-with-default" in text
