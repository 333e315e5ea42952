import psycopg
from django.db.backends.postgresql.operations import DatabaseOperations as PGOperations

from audit.append_only import TRIGGERS
from portal.db import base


class DatabaseOperations(PGOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        sql = super().sql_flush(
            style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        guarded = [(t, TRIGGERS[t][1]) for t in tables if t in TRIGGERS]
        if not sql or not guarded:
            return sql
        qn = self.quote_name
        disable = [f"ALTER TABLE {qn(t)} DISABLE TRIGGER {qn(trg)};" for t, trg in guarded]
        enable = [f"ALTER TABLE {qn(t)} ENABLE ALWAYS TRIGGER {qn(trg)};" for t, trg in guarded]
        return [*disable, *sql, *enable]

    def execute_sql_flush(self, sql_list):
        """The flush as the migrator, on a connection of its own: the suite connects as
        the application role, which may neither TRUNCATE nor unguard a table (only the
        owner may disable a trigger). One transaction, as Django's own flush."""
        from tests.db import roles

        cfg = self.connection.settings_dict
        params = roles.migrator_params(cfg["NAME"])
        with (
            psycopg.connect(**params, connect_timeout=10) as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            for statement in sql_list:
                cursor.execute(statement)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
