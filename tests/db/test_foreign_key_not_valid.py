"""A foreign key added NOT VALID, then validated: against real sessions and the catalog.

The fixture app ``lockapp`` writes ``alpha.beta`` without a constraint (0007), gives it
its constraint NOT VALID and adds ``beta.alpha`` as a new column the same way (0008,
``AddForeignKeyNotValid``), and validates both (0009, ``ValidateForeignKey``). What the
locks are is read from ``pg_locks`` by a second session while the first holds them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pglast
import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, migrations, models
from django.db.migrations.loader import MigrationLoader

from portal.db import drift
from portal.db.operations import AddForeignKeyNotValid

# Migrations run as the migrator, the owner of every schema (tests/db/roles.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_migrator"),
]

ALPHA_FK = "alpha_beta_id_bcf4595e_fk_beta_id"
BETA_FK = "beta_alpha_id_2e7d0411_fk_alpha_id"
MISSING = 999_999  # an id no beta or alpha row has


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


def execute(sql: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def validated() -> dict[str, bool]:
    return dict(
        execute(
            "SELECT conname, convalidated FROM pg_constraint "
            "WHERE conrelid IN ('lockapp.alpha'::regclass, 'lockapp.beta'::regclass) "
            "AND contype = 'f'"
        )
    )


def indexes() -> set[str]:
    return {r[0] for r in execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'lockapp'")}


def statements(migration: str, containing: str) -> list[str]:
    """The statements ``migrate`` runs for a lockapp migration, as sqlmigrate prints them."""
    out = io.StringIO()
    call_command("sqlmigrate", "lockapp", migration, stdout=out, no_color=True)
    return [s for s in pglast.split(out.getvalue()) if containing in s]


def locks_of(pid: int) -> dict[str, set[str]]:
    """Relation locks held by backend ``pid``, by table (lockapp's only)."""
    found: dict[str, set[str]] = {}
    for table, mode in execute(
        "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE l.pid = %(pid)s AND l.granted AND n.nspname = 'lockapp' AND c.relkind = 'r'",
        {"pid": pid},
    ):
        found.setdefault(table, set()).add(mode)
    return found


def has_column(table: str, column: str) -> bool:
    return bool(
        execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'lockapp' "
            "AND table_name = %(t)s AND column_name = %(c)s",
            {"t": table, "c": column},
        )
    )


@pytest.fixture
def at_0007() -> Iterator[None]:
    call_command("migrate", "lockapp", "0007", verbosity=0)
    yield
    # Rows that point nowhere would stop the validation on the way back to the end.
    execute("UPDATE lockapp.alpha SET beta_id = NULL")
    if has_column("beta", "alpha_id"):
        execute("UPDATE lockapp.beta SET alpha_id = NULL")
    call_command("migrate", "lockapp", verbosity=0)


def test_the_state_is_djangos_own_field_with_its_constraint():
    """After the three migrations the models need no migration, and the database has
    the constraints (and names) a fresh database gets from the models: no drift."""
    out = io.StringIO()
    call_command("makemigrations", "lockapp", check=True, dry_run=True, stdout=out)
    assert "No changes detected" in out.getvalue()
    assert validated() == {ALPHA_FK: True, BETA_FK: True}
    assert {"alpha_beta_id_bcf4595e", "beta_alpha_id_2e7d0411"} <= indexes()
    assert drift.compare(connection) == []


def test_not_valid_first_then_validated_naming_the_row(at_0007):
    alpha = execute(
        "INSERT INTO lockapp.alpha (name, beta_id) VALUES ('points nowhere', %(b)s) RETURNING id",
        {"b": MISSING},
    )[0][0]
    # Step 1: the old row that breaks the constraint does not stop it.
    call_command("migrate", "lockapp", "0008", verbosity=0)
    assert validated() == {ALPHA_FK: False, BETA_FK: False}
    assert {"alpha_beta_id_bcf4595e", "beta_alpha_id_2e7d0411"} <= indexes()
    found = [d.line() for d in drift.compare(connection)]
    assert sorted(found) == sorted(
        [
            "unapplied migration: lockapp.0009_validate_foreign_keys",
            f"constraint not validated: lockapp.alpha {ALPHA_FK} - added NOT VALID, never "
            "validated: ALTER TABLE ... VALIDATE CONSTRAINT",
            f"constraint not validated: lockapp.beta {BETA_FK} - added NOT VALID, never "
            "validated: ALTER TABLE ... VALIDATE CONSTRAINT",
        ]
    ), found
    # New rows are checked from now on, on both tables.
    with pytest.raises(IntegrityError, match=ALPHA_FK):
        execute("INSERT INTO lockapp.alpha (name, beta_id) VALUES ('new', %(b)s)", {"b": MISSING})
    with pytest.raises(IntegrityError, match=BETA_FK):
        execute("INSERT INTO lockapp.beta (name, alpha_id) VALUES ('new', %(a)s)", {"a": MISSING})
    execute("INSERT INTO lockapp.beta (name, alpha_id) VALUES ('fine', %(a)s)", {"a": alpha})
    # Step 2 names the key of the row that breaks it; once fixed, it validates.
    with pytest.raises(IntegrityError, match=rf"Key \(beta_id\)=\({MISSING}\) is not present"):
        call_command("migrate", "lockapp", "0009", verbosity=0)
    execute("UPDATE lockapp.alpha SET beta_id = NULL WHERE id = %(a)s", {"a": alpha})
    call_command("migrate", "lockapp", "0009", verbosity=0)
    assert validated() == {ALPHA_FK: True, BETA_FK: True}
    assert drift.compare(connection) == []
    # Backwards: 0008 leaves alpha.beta without its constraint and index, drops beta.alpha.
    call_command("migrate", "lockapp", "0007", verbosity=0)
    assert validated() == {}
    assert not {"alpha_beta_id_bcf4595e", "beta_alpha_id_2e7d0411"} & indexes()
    assert has_column("alpha", "beta_id") and not has_column("beta", "alpha_id")


def test_not_valid_takes_share_row_exclusive_on_both_tables_validate_lets_readers_by(
    at_0007,
):
    [add] = statements("0008", f'CONSTRAINT "{ALPHA_FK}"')
    assert add.rstrip().endswith("NOT VALID")
    with connect() as session:
        session.execute(add)  # inside the session's open transaction: its locks stay
        # SHARE ROW EXCLUSIVE on both (plus the ACCESS SHARE of opening them), not the
        # ACCESS EXCLUSIVE that Django's inline constraint holds while it checks rows.
        held = locks_of(session.info.backend_pid)
        assert held == {
            "alpha": {"ShareRowExclusiveLock", "AccessShareLock"},
            "beta": {"ShareRowExclusiveLock", "AccessShareLock"},
        }
        session.rollback()
    call_command("migrate", "lockapp", "0008", verbosity=0)
    [validate] = statements("0009", f'VALIDATE CONSTRAINT "{ALPHA_FK}"')
    with connect() as session:
        session.execute(validate)
        held = locks_of(session.info.backend_pid)
        # SHARE UPDATE EXCLUSIVE on the table, ROW SHARE on the one it references (and
        # the ACCESS SHARE of the check query): nothing that stops a read or a write.
        assert "ShareUpdateExclusiveLock" in held["alpha"]
        assert held["alpha"] <= {"ShareUpdateExclusiveLock", "AccessShareLock"}
        assert "RowShareLock" in held["beta"]
        assert held["beta"] <= {"RowShareLock", "AccessShareLock"}
        with connect(autocommit=True) as other:
            other.execute("SET lock_timeout = '500ms'")
            assert other.execute("SELECT count(*) FROM lockapp.alpha").fetchone() is not None
            assert other.execute("SELECT count(*) FROM lockapp.beta").fetchone() is not None
            other.execute("INSERT INTO lockapp.alpha (name) VALUES ('written meanwhile')")
        session.rollback()


def _states_at(name: str):
    loader = MigrationLoader(connection)
    return loader.project_state(("lockapp", name))


def test_an_index_built_concurrently_needs_a_non_atomic_migration(at_0007):
    """A clear reason before anything runs; the table is left as it was."""
    before = _states_at("0007_alpha_beta_without_constraint")
    op = AddForeignKeyNotValid(
        "beta", "alpha", models.ForeignKey("lockapp.alpha", null=True, on_delete=models.PROTECT)
    )
    after = before.clone()
    op.state_forwards("lockapp", after)
    with (
        pytest.raises(ValueError, match="atomic = False"),
        connection.schema_editor(atomic=True) as editor,
    ):
        op.database_forwards("lockapp", editor, before, after)
    assert not has_column("beta", "alpha_id")


def test_an_existing_field_may_only_gain_its_constraint(at_0007):
    before = _states_at("0007_alpha_beta_without_constraint")
    op = AddForeignKeyNotValid(
        "alpha",
        "beta",
        models.ForeignKey(
            "lockapp.beta", null=False, on_delete=models.PROTECT, db_index=False, default=1
        ),
    )
    after = before.clone()
    op.state_forwards("lockapp", after)
    with (
        pytest.raises(ValueError, match="make any other change with AlterField first"),
        connection.schema_editor(atomic=True) as editor,
    ):
        op.database_forwards("lockapp", editor, before, after)
    assert validated() == {}


def test_the_operation_is_written_and_read_back_by_djangos_migration_writer():
    from django.db.migrations.writer import MigrationWriter

    migration = type("Migration", (migrations.Migration,), {"operations": []})("0100_x", "lockapp")
    migration.operations = [
        AddForeignKeyNotValid(
            "beta", "alpha", models.ForeignKey("lockapp.alpha", null=True, on_delete=models.PROTECT)
        )
    ]
    text = MigrationWriter(migration).as_string()
    assert "import portal.db.operations" in text
    assert "portal.db.operations.AddForeignKeyNotValid(" in text
