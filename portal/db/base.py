"""Database wrapper: the stock PostgreSQL backend with schema-aware parts."""

from django.db.backends.postgresql import base

from portal.outage import guarded_connect

from .introspection import DatabaseIntrospection
from .schema import DatabaseSchemaEditor


class DatabaseWrapper(base.DatabaseWrapper):
    introspection_class = DatabaseIntrospection
    SchemaEditorClass = DatabaseSchemaEditor

    def get_new_connection(self, conn_params):
        # In the web process, a server that just failed to answer is not asked again
        # by every later query of the same requests (portal/outage.py).
        parent = super().get_new_connection
        return guarded_connect(self.alias, lambda: parent(conn_params))
