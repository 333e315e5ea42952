"""Migration operations shared by the apps."""

from django.db import migrations, models
from django.db.migrations.operations.base import Operation

from .declared import reaches_database

# Django's suffix for a foreign key's constraint name (BaseDatabaseSchemaEditor).
FK_SUFFIX = "_fk_%(to_table)s_%(to_column)s"


def create_schema(name: str) -> migrations.RunSQL:
    """The first operation of an app's 0001: its schema, dropped again on reverse.

    The name is a fixed identifier chosen in code, never user input, so quoting it
    here is safe; RunSQL cannot take identifiers as parameters.
    """
    if not name.isidentifier():
        raise ValueError(f"not a plain schema name: {name!r}")
    return migrations.RunSQL(
        sql=f'CREATE SCHEMA IF NOT EXISTS "{name}"',
        reverse_sql=f'DROP SCHEMA IF EXISTS "{name}"',
    )


class AddConstraintNotValid(migrations.AddConstraint):
    """AddConstraint for a check constraint on a big table, written ``NOT VALID``.

    PostgreSQL then checks only rows written from now on, so adding it needs its lock
    for an instant instead of for a scan of the whole table. The existing rows are
    checked by ``ValidateConstraint`` in a later migration, under a lock (SHARE UPDATE
    EXCLUSIVE) that lets reads and writes through. Model state is AddConstraint's.
    """

    not_valid = True

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if not isinstance(self.constraint, models.CheckConstraint):
            raise ValueError("AddConstraintNotValid takes a CheckConstraint")
        statement = self.constraint.create_sql(model, schema_editor)
        schema_editor.execute(str(statement) + " NOT VALID")

    def describe(self):
        return f"Create constraint {self.constraint.name} on model {self.model_name} NOT VALID"


class ValidateConstraint(Operation):
    """Check the existing rows against a constraint added ``NOT VALID``; database only.

    PostgreSQL takes SHARE UPDATE EXCLUSIVE on the table (reads and writes go on; only
    other schema changes and VACUUM wait) and, for a foreign key, ROW SHARE on the
    referenced table. A row that breaks the constraint stops it with an error naming
    the constraint (for a foreign key, the missing key too).
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, name: str):
        self.model_name = model_name
        self.name = name

    def deconstruct(self):
        return self.__class__.__name__, [], {"model_name": self.model_name, "name": self.name}

    def state_forwards(self, app_label, state):
        pass

    def constraint_name(self, schema_editor, model) -> str:
        """The constraint's name, quoted."""
        return schema_editor.quote_name(self.name)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        qn = schema_editor.quote_name
        schema_editor.execute(
            f"ALTER TABLE {qn(model._meta.db_table)} "
            f"VALIDATE CONSTRAINT {self.constraint_name(schema_editor, model)}"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass  # A validated constraint stays valid; there is nothing to undo.

    def describe(self):
        return f"Validate constraint {self.name} on model {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"validate_{self.name.lower()}"


class AddForeignKeyNotValid(migrations.AddField):
    """A foreign key on an existing (big) table, its constraint written ``NOT VALID``.

    Django's ``AddField`` adds the column with the constraint inline, so PostgreSQL
    checks every row under the ACCESS EXCLUSIVE lock of ``ADD COLUMN``. This runs three
    statements instead, each short:

    1. ``ADD COLUMN`` without the constraint (skipped when the field already exists as
       a ``ForeignKey(db_constraint=False)`` to the same model: then it only gains its
       constraint);
    2. ``ADD CONSTRAINT <Django's name> FOREIGN KEY ... NOT VALID``: SHARE ROW EXCLUSIVE
       on both tables for an instant; rows written from now on are checked, existing
       ones are not;
    3. the field's index, ``CREATE INDEX CONCURRENTLY`` (so the migration must be
       ``atomic = False``; or give the field ``db_index=False``).

    ``ValidateForeignKey`` in a later migration checks the existing rows. The model
    state is exactly ``AddField``'s (or ``AlterField``'s) with the ordinary field, so
    ``makemigrations`` sees nothing to do and the constraint has the name Django gives
    it on a fresh database, which is what the drift check compares.
    """

    not_valid = True

    def _exists(self, app_label, state) -> bool:
        return self.name in state.models[app_label, self.model_name_lower].fields

    def state_forwards(self, app_label, state):
        if self._exists(app_label, state):
            state.alter_field(app_label, self.model_name_lower, self.name, self.field, True)
        else:
            super().state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        to_model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, to_model):
            return
        from_model = from_state.apps.get_model(app_label, self.model_name)
        field = to_model._meta.get_field(self.name)
        if not (field.many_to_one and field.concrete and field.db_constraint):
            raise ValueError(
                f"AddForeignKeyNotValid takes a ForeignKey with its constraint; {self.name} is not"
            )
        old = from_model._meta.get_field(self.name) if self._exists(app_label, from_state) else None
        if old is not None:
            self._check_only_the_constraint_changes(old, field)
        indexed_before = old is not None and schema_editor._field_should_be_indexed(from_model, old)
        indexes = (
            []
            if indexed_before or not schema_editor._field_should_be_indexed(to_model, field)
            else schema_editor._field_indexes_sql(to_model, field)
        )
        if indexes and schema_editor.connection.in_atomic_block:
            raise ValueError(
                f"AddForeignKeyNotValid builds the index of {self.model_name}.{self.name} "
                "CONCURRENTLY, which cannot run in a transaction: put it in a migration with "
                "atomic = False, or give the field db_index=False"
            )
        if old is None:
            # The column alone: the constraint and the index follow, each on its own.
            saved = field.db_constraint, field.db_index
            field.db_constraint, field.db_index = False, False
            try:
                schema_editor.add_field(from_model, field)
            finally:
                field.db_constraint, field.db_index = saved
        constraint = schema_editor._create_fk_sql(to_model, field, FK_SUFFIX)
        constraint.template += " NOT VALID"
        schema_editor.execute(constraint)
        for index in indexes:
            if index.template == schema_editor.sql_create_index:
                index.template = schema_editor.sql_create_index_concurrently
            schema_editor.execute(index)

    def _check_only_the_constraint_changes(self, old, new) -> None:
        old_fk = getattr(old, "many_to_one", False) and not old.db_constraint
        same_target = old_fk and (
            old.related_model._meta.label_lower,
            old.target_field.column,
        ) == (new.related_model._meta.label_lower, new.target_field.column)
        plain_old, plain_new = old.clone(), new.clone()
        for plain in (plain_old, plain_new):
            plain.db_constraint, plain.db_index = True, new.db_index
        if not same_target or reaches_database(plain_old, plain_new, self.name):
            raise ValueError(
                f"AddForeignKeyNotValid on the existing field {self.model_name}.{self.name} "
                "only adds its constraint (and index): the field must already be a "
                "ForeignKey(db_constraint=False) to the same model, otherwise alike; "
                "make any other change with AlterField first"
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not self._exists(app_label, to_state):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        # The field stays, without its constraint (and the index it did not have).
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            before = to_state.apps.get_model(app_label, self.model_name)
            schema_editor.alter_field(
                model, model._meta.get_field(self.name), before._meta.get_field(self.name)
            )

    def describe(self):
        return f"Add foreign key {self.name} to {self.model_name} NOT VALID"

    @property
    def migration_name_fragment(self):
        return f"{self.model_name_lower}_{self.name_lower}_not_valid"

    def reduce(self, operation, app_label):
        # AddField folds a later AlterField into itself; that would lose NOT VALID.
        return Operation.reduce(self, operation, app_label)


class ValidateForeignKey(ValidateConstraint):
    """Validate the constraint ``AddForeignKeyNotValid`` added, named by its field
    (the constraint's name is Django's, with a hash in it)."""

    def constraint_name(self, schema_editor, model) -> str:
        field = model._meta.get_field(self.name)
        return str(schema_editor._fk_constraint_name(model, field, FK_SUFFIX))

    def describe(self):
        return f"Validate the foreign key of {self.model_name}.{self.name}"

    @property
    def migration_name_fragment(self):
        return f"validate_{self.model_name.lower()}_{self.name.lower()}"
