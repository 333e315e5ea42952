"""The migration linter: rules a migration must follow to be safe on a live database.

Two layers, both run by ``manage.py lint_migrations`` (``make migration-lint``, part of
``make test``):

- squawk (the PostgreSQL migration linter) over the SQL ``sqlmigrate`` prints for each
  migration, with the project configuration in ``.squawk.toml``;
- Django-level rules over the operations and the project state before them (below):
  they know which tables already exist (a rule about locking a big table does not apply
  to one the same migration creates) and which tables the gateway writes.

A migration that breaks a rule fails the build with the rule and the fix, unless its
module carries a reviewed exemption::

    LINT_EXEMPT = {"rule-name": "why this is safe here"}
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.core.management import call_command
from django.db import migrations, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState

from .declared import reaches_database
from .names import split_table

# Schemas the gateway writes with plain SQL, not through Django: a column it does not
# know must have a database default, and what it uses must not disappear in one step.
GATEWAY_SCHEMAS = frozenset({"core"})

# The apps whose migrations are linted (the project's own).
PROJECT_APPS = ("accounts", "core", "analytics", "audit", "diagnostics", "dbroles")

RULES: dict[str, str] = {
    "index-without-concurrently": (
        "AddIndex/RemoveIndex locks writes on an existing table for the whole build. Fix: "
        "AddIndexConcurrently / RemoveIndexConcurrently "
        "(django.contrib.postgres.operations) in a migration with atomic = False."
    ),
    "constraint-validated-in-one-step": (
        "Adding a check or foreign key to an existing table scans it under a lock that "
        "blocks writes. Fix: add it NOT VALID, validate it in a later migration: "
        "portal.db.operations.AddConstraintNotValid then ValidateConstraint for a check; "
        "portal.db.operations.AddForeignKeyNotValid (in place of AddField or of the "
        "AlterField that gives a db_constraint=False field its constraint; atomic = False "
        "when the field has an index, built CONCURRENTLY) then ValidateForeignKey for a "
        "foreign key."
    ),
    "not-null-in-one-step": (
        "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE. Fix: add "
        "CHECK (col IS NOT NULL) NOT VALID, validate it in a later migration, then "
        "SET NOT NULL (PostgreSQL 12+ uses the validated check and skips the scan) "
        "and drop the check."
    ),
    "one-table-lock-per-transaction": (
        "An atomic migration that alters two existing tables holds the first table's "
        "lock while it waits for the second. Fix: one existing table per migration (or "
        "atomic = False with each operation standing alone)."
    ),
    "column-type-rewrite": (
        "This type change rewrites the table (and its indexes) under ACCESS EXCLUSIVE. "
        "Fix: add a new column, backfill in batches, switch readers and writers, drop "
        "the old column in a later release."
    ),
    "gateway-default": (
        "The gateway inserts into this table without the new column; Django drops a "
        "Python default after adding the column, so its INSERTs fail. Fix: give the "
        "field db_default (with the same value as default)."
    ),
    "gateway-expand-contract": (
        "The previous release (and the gateway) still reads or writes this column or "
        "table. Fix: expand/contract: stop using it in a release first; remove it in a "
        "later migration; for a rename add the new one, backfill, switch, then drop."
    ),
}


@dataclass(frozen=True)
class Violation:
    app_label: str
    migration: str
    rule: str
    message: str
    source: str  # "django" or "squawk"

    def line(self) -> str:
        return f"{self.app_label}.{self.migration}: {self.rule} ({self.source}): {self.message}"


def exemptions(migration: Migration) -> dict[str, str]:
    module = __import__(type(migration).__module__, fromlist=["LINT_EXEMPT"])
    exempt = getattr(module, "LINT_EXEMPT", {})
    if not isinstance(exempt, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in exempt.items()
    ):
        raise ValueError(
            f"{migration.app_label}.{migration.name}: LINT_EXEMPT must map rule names to "
            "a non-empty reason"
        )
    return exempt


# --- Django-level rules -------------------------------------------------------------


def _flatten(operations: Iterable[Any]) -> Iterator[Any]:
    for operation in operations:
        if isinstance(operation, migrations.SeparateDatabaseAndState):
            yield from _flatten(operation.database_operations)
        else:
            yield operation


def _schema(state: ProjectState, app_label: str, model_name: str) -> str | None:
    model = state.models.get((app_label, model_name.lower()))
    if model is None:
        return None
    db_table = model.options.get("db_table") or f"{app_label}_{model_name.lower()}"
    return split_table(db_table)[0]


def _is_rewrite(old: str, new: str) -> bool:
    """Whether ALTER COLUMN TYPE old -> new rewrites the table (PostgreSQL 9.2+ skips the
    rewrite for a longer varchar, varchar to text, and a wider numeric)."""
    if old == new:
        return False
    varchar = re.compile(r"^varchar\((\d+)\)$")
    old_v, new_v = varchar.match(old), varchar.match(new)
    if old_v and (new == "text" or new == "varchar"):
        return False
    if old_v and new_v:
        return int(new_v.group(1)) < int(old_v.group(1))
    numeric = re.compile(r"^numeric\((\d+), ?(\d+)\)$")
    old_n, new_n = numeric.match(old), numeric.match(new)
    if old_n and new_n:
        return not (old_n.group(2) == new_n.group(2) and int(new_n.group(1)) >= int(old_n.group(1)))
    return True


def _schema_unchanged(op: migrations.AlterField, before: ProjectState, app: str) -> bool:
    """An AlterField that changes only what the database never sees (verbose names,
    help texts, choices, validators): it sends no SQL and takes no lock."""
    old = before.models[(app, op.model_name_lower)].fields.get(op.name)
    return old is not None and not reaches_database(old, op.field, op.name)


def django_violations(
    migration: Migration, before: ProjectState, connection: BaseDatabaseWrapper
) -> list[tuple[str, str]]:
    """(rule, detail) for each Django-level rule the migration breaks."""
    app = migration.app_label
    found: list[tuple[str, str]] = []
    existing_tables: set[str] = set()
    created = {
        op.name.lower()
        for op in _flatten(migration.operations)
        if isinstance(op, migrations.CreateModel)
    }

    def existing(model_name: str) -> bool:
        return (app, model_name.lower()) in before.models and model_name.lower() not in created

    for op in _flatten(migration.operations):
        model_name = getattr(op, "model_name", None) or getattr(op, "name", None)
        if not isinstance(model_name, str) or not existing(model_name):
            continue
        schema = _schema(before, app, model_name)
        where = f"{app}.{model_name.lower()}"
        # Operations that lock the table inside the migration's transaction.
        touches_table = not isinstance(
            op,
            AddIndexConcurrently
            | RemoveIndexConcurrently
            | migrations.RunPython
            | migrations.AlterModelOptions
            | migrations.AlterModelManagers,
        ) and not (isinstance(op, migrations.AlterField) and _schema_unchanged(op, before, app))
        if isinstance(op, migrations.AddIndex | migrations.RemoveIndex) and not isinstance(
            op, AddIndexConcurrently | RemoveIndexConcurrently
        ):
            found.append(("index-without-concurrently", f"{type(op).__name__} on {where}"))
        if (
            isinstance(op, migrations.AddConstraint)
            and not getattr(op, "not_valid", False)
            and isinstance(op.constraint, models.CheckConstraint)
        ):
            found.append(("constraint-validated-in-one-step", f"{op.constraint.name} on {where}"))
        if isinstance(op, migrations.AddField):
            field = op.field
            if (
                field.remote_field is not None
                and getattr(field, "db_constraint", False)
                and not getattr(op, "not_valid", False)
            ):
                found.append(
                    ("constraint-validated-in-one-step", f"foreign key {op.name} on {where}")
                )
            has_default = field.default is not models.NOT_PROVIDED
            if (
                schema in GATEWAY_SCHEMAS
                and field.db_default is models.NOT_PROVIDED
                and (has_default or not field.null)
                and not field.generated
            ):
                found.append(("gateway-default", f"{op.name} on {where}"))
        if isinstance(op, migrations.AlterField):
            old = before.models[(app, model_name.lower())].fields.get(op.name)
            if old is not None and old.null and not op.field.null:
                found.append(("not-null-in-one-step", f"{op.name} on {where}"))
            if (
                old is not None
                and getattr(op.field, "db_constraint", False)
                and not getattr(old, "db_constraint", False)
            ):
                found.append(
                    ("constraint-validated-in-one-step", f"foreign key {op.name} on {where}")
                )
            # A relation's column type is its target's key type, which the migration
            # state cannot resolve unrendered; a change of it is the target's own
            # AlterField, checked there.
            if old is not None and not (old.is_relation or op.field.is_relation):
                old_type = old.db_type(connection)
                new_type = op.field.db_type(connection)
                if old_type and new_type and _is_rewrite(old_type, new_type):
                    found.append(
                        ("column-type-rewrite", f"{op.name} on {where}: {old_type} -> {new_type}")
                    )
        if schema in GATEWAY_SCHEMAS and isinstance(
            op,
            migrations.RemoveField
            | migrations.RenameField
            | migrations.DeleteModel
            | migrations.RenameModel,
        ):
            found.append(("gateway-expand-contract", f"{type(op).__name__} on {where}"))
        if touches_table:
            existing_tables.add(where)
    if migration.atomic and len(existing_tables) > 1:
        found.append(("one-table-lock-per-transaction", ", ".join(sorted(existing_tables))))
    return found


# --- squawk ---------------------------------------------------------------------------


def squawk_binary() -> str:
    found = shutil.which("squawk")
    if found:
        return found
    beside = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "squawk"
    if beside.exists():
        return str(beside)
    raise FileNotFoundError(
        "squawk is not installed: pip install -r requirements-dev.txt (squawk-cli)"
    )


def sql_of(app_label: str, name: str) -> str:
    out = io.StringIO()
    call_command("sqlmigrate", app_label, name, stdout=out, no_color=True)
    return out.getvalue()


def squawk(sql_by_key: dict[tuple[str, str], str], config: Path) -> dict[tuple[str, str], list]:
    """squawk's findings per (app, migration), each as (rule, message)."""
    results: dict[tuple[str, str], list] = {key: [] for key in sql_by_key}
    with tempfile.TemporaryDirectory(prefix="migration-lint-") as tmp:
        paths = {}
        for (app, name), sql in sql_by_key.items():
            path = Path(tmp) / f"{app}__{name}.sql"
            path.write_text(sql)
            paths[str(path)] = (app, name)
        run = subprocess.run(  # noqa: S603 (fixed binary, our own temp files)
            [squawk_binary(), "-c", str(config), "--reporter", "json", *paths],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if run.returncode not in (0, 1) or not run.stdout.strip():
            raise RuntimeError(f"squawk failed ({run.returncode}): {run.stderr.strip()}")
        for item in json.loads(run.stdout):
            key = paths.get(item.get("file"))
            if key is not None:
                message = item.get("message", "")
                if item.get("help"):
                    message += f" Fix: {item['help']}"
                results[key].append((item.get("rule_name"), f"line {item.get('line')}: {message}"))
    return results


# --- the whole run --------------------------------------------------------------------


def lint(
    connection: BaseDatabaseWrapper,
    apps: Iterable[str] = PROJECT_APPS,
    config: Path | None = None,
    use_squawk: bool = True,
) -> tuple[list[Violation], list[Violation]]:
    """(violations, exempted) over every migration of ``apps``."""
    config = config or Path(settings.BASE_DIR) / ".squawk.toml"
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    wanted = set(apps)
    keys = sorted(k for k in loader.disk_migrations if k[0] in wanted)
    raw: list[Violation] = []
    for app, name in keys:
        migration = loader.get_migration(app, name)
        before = loader.project_state((app, name), at_end=False)
        for rule, detail in django_violations(migration, before, connection):
            raw.append(Violation(app, name, rule, f"{detail}. {RULES[rule]}", "django"))
    if use_squawk:
        sql = {key: sql_of(*key) for key in keys}
        for (app, name), findings in squawk(sql, config).items():
            for rule, message in findings:
                raw.append(Violation(app, name, rule, message, "squawk"))
    violations: list[Violation] = []
    exempted: list[Violation] = []
    for v in raw:
        exempt = exemptions(loader.get_migration(v.app_label, v.migration))
        (exempted if v.rule in exempt else violations).append(v)
    return violations, exempted
