"""Migration operations shared by the apps."""

from django.db import migrations


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
