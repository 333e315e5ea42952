"""Schema editor that names indexes and constraints with their table's schema.

Index and constraint names live in the table's schema, but the stock templates write
them bare (``DROP INDEX IF EXISTS name``, ``ALTER INDEX name RENAME``,
``SET CONSTRAINTS name``), so PostgreSQL resolves them through ``search_path`` and
misses (RemoveConstraint becomes a silent no-op; RenameIndex fails). Table renames are
written ``RENAME TO "schema"."new"``, a syntax error; a move between schemas needs
``SET SCHEMA``.
"""

from django.db.backends.ddl_references import Statement
from django.db.backends.postgresql import schema as pg

from .names import join_table, split_table


class DatabaseSchemaEditor(pg.DatabaseSchemaEditor):
    sql_delete_index = "DROP INDEX IF EXISTS %(qualified_name)s"
    sql_delete_index_concurrently = "DROP INDEX CONCURRENTLY IF EXISTS %(qualified_name)s"
    sql_rename_index = "ALTER INDEX %(qualified_old_name)s RENAME TO %(new_name)s"
    sql_delete_fk = (
        "SET CONSTRAINTS %(qualified_name)s IMMEDIATE; "
        "ALTER TABLE %(table)s DROP CONSTRAINT %(name)s"
    )
    sql_set_schema = "ALTER TABLE %(table)s SET SCHEMA %(schema)s"

    def _qualified(self, model, name: str) -> str:
        schema, _ = split_table(model._meta.db_table)
        return self.quote_name(join_table(schema, name))

    # The three _*_sql methods below are private Django methods that django-stubs does
    # not declare.
    def _delete_index_sql(self, model, name, sql=None, concurrently=False):
        statement = super()._delete_index_sql(model, name, sql, concurrently=concurrently)  # type: ignore[misc]
        statement.parts["qualified_name"] = self._qualified(model, name)
        return statement

    def _delete_constraint_sql(self, template, model, name):
        statement = super()._delete_constraint_sql(template, model, name)  # type: ignore[misc]
        statement.parts["qualified_name"] = self._qualified(model, name)
        return statement

    def _rename_index_sql(self, model, old_name, new_name):
        statement = super()._rename_index_sql(model, old_name, new_name)  # type: ignore[misc]
        statement.parts["qualified_old_name"] = self._qualified(model, old_name)
        return statement

    def alter_db_table(self, model, old_db_table, new_db_table):
        if old_db_table == new_db_table:
            return
        old_schema, old_name = split_table(old_db_table)
        new_schema, new_name = split_table(new_db_table)
        current = old_db_table
        if old_schema != new_schema:
            # SET SCHEMA moves the table with its indexes, constraints and owned sequences.
            target = new_schema or self._current_schema()
            self.execute(
                self.sql_set_schema
                % {"table": self.quote_name(current), "schema": self.quote_name(target)}
            )
            current = join_table(new_schema, old_name)
        if old_name != new_name:
            self.execute(
                self.sql_rename_table
                % {"old_table": self.quote_name(current), "new_table": self.quote_name(new_name)}
            )
        for sql in self.deferred_sql:
            if isinstance(sql, Statement):
                sql.rename_table_references(old_db_table, new_db_table)

    def _current_schema(self) -> str:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            return cursor.fetchone()[0]
