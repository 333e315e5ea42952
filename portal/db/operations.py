"""Migration operations shared by the apps."""

from django.db import migrations, models


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


class ValidateConstraint(migrations.operations.base.Operation):
    """Check the existing rows against a constraint added ``NOT VALID``; database only."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, name: str):
        self.model_name = model_name
        self.name = name

    def deconstruct(self):
        return self.__class__.__name__, [], {"model_name": self.model_name, "name": self.name}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        qn = schema_editor.quote_name
        schema_editor.execute(
            f"ALTER TABLE {qn(model._meta.db_table)} VALIDATE CONSTRAINT {qn(self.name)}"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass  # A validated constraint stays valid; there is nothing to undo.

    def describe(self):
        return f"Validate constraint {self.name} on model {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"validate_{self.name.lower()}"
