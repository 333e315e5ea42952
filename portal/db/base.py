"""Database wrapper: the stock PostgreSQL backend with schema-aware parts."""

from django.db.backends.postgresql import base

from .introspection import DatabaseIntrospection
from .schema import DatabaseSchemaEditor


class DatabaseWrapper(base.DatabaseWrapper):
    introspection_class = DatabaseIntrospection
    SchemaEditorClass = DatabaseSchemaEditor
