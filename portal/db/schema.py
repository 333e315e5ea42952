"""Schema editor that names indexes and constraints with their table's schema.

Index and constraint names live in the table's schema, but the stock templates write
them bare (``DROP INDEX IF EXISTS name``, ``ALTER INDEX name RENAME``,
``SET CONSTRAINTS name``), so PostgreSQL resolves them through ``search_path`` and
misses (RemoveConstraint becomes a silent no-op; RenameIndex fails). Table renames are
written ``RENAME TO "schema"."new"``, a syntax error; a move between schemas needs
``SET SCHEMA``.

Every statement also runs lock-safe (portal/db/locks.py): a short ``lock_timeout``, a
``statement_timeout`` for DDL that rewrites nothing, retries when not inside a
transaction (an atomic migration is retried whole by portal/db/executor.py), and a
note of who blocked it.
"""

import contextlib
import time

from django.db import DatabaseError
from django.db.backends.ddl_references import Statement
from django.db.backends.postgresql import schema as pg

from . import locks
from .names import join_table, split_table

SET_TIMEOUTS = (
    "SELECT set_config('lock_timeout', %(lock)s, %(local)s), "
    "set_config('statement_timeout', %(statement)s, %(local)s)"
)
SET_STATEMENT_TIMEOUT = "SELECT set_config('statement_timeout', %(statement)s, %(local)s)"
SHOW_TIMEOUTS = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
INVALID_INDEX = """
SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(%(index)s) AND NOT indisvalid
"""


def _ms(seconds: float) -> str:
    return f"{max(int(seconds * 1000), 1)}ms"


class DatabaseSchemaEditor(pg.DatabaseSchemaEditor):
    sql_delete_index = "DROP INDEX IF EXISTS %(qualified_name)s"
    sql_delete_index_concurrently = "DROP INDEX CONCURRENTLY IF EXISTS %(qualified_name)s"
    sql_rename_index = "ALTER INDEX %(qualified_old_name)s RENAME TO %(new_name)s"
    sql_delete_fk = (
        "SET CONSTRAINTS %(qualified_name)s IMMEDIATE; "
        "ALTER TABLE %(table)s DROP CONSTRAINT %(name)s"
    )
    sql_set_schema = "ALTER TABLE %(table)s SET SCHEMA %(schema)s"

    def __enter__(self):
        self.lock_policy = locks.current_policy()
        self._saved_timeouts: tuple[str, str] | None = None
        self._watch_params: dict | None = None
        return super().__enter__()

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            return super().__exit__(exc_type, exc_value, traceback)
        finally:
            # Put the session's own timeouts back, unless an enclosing transaction is
            # aborted (its rollback undoes the SETs anyway).
            if self._saved_timeouts and not self.connection.needs_rollback:
                lock, statement = self._saved_timeouts
                with contextlib.suppress(DatabaseError), self.connection.cursor() as cursor:
                    cursor.execute(
                        SET_TIMEOUTS,
                        {"lock": lock, "statement": statement, "local": False},
                    )

    def _lock_safe(self) -> bool:
        return self.lock_policy.enabled and not self.collect_sql

    def execute(self, sql, params=()):
        if not self._lock_safe():
            return super().execute(sql, params)
        policy = self.lock_policy
        text = str(sql)
        lock_timeout, statement_timeout = locks.timeouts_for(text, policy)
        attempt = 0
        while True:
            attempt += 1
            local = self.connection.in_atomic_block
            self._set_timeouts(lock_timeout, statement_timeout, local)
            watch = locks.Watch(self._watch_connection(), self._backend_pid(), lock_timeout / 2)
            try:
                with watch:
                    result = super().execute(sql, params)
            except DatabaseError as exc:
                if not locks.is_lock_timeout(exc):
                    raise
                timeout = locks.LockTimeout(text, watch.snapshot, exc)
                if local:
                    # The transaction is aborted: only the whole migration can retry.
                    raise timeout from exc
                if attempt > policy.retries:
                    raise locks.MigrationBlocked(
                        locks.report(
                            "a non-atomic migration", timeout, policy, attempt, atomic=False
                        )
                    ) from exc
                self._drop_invalid_index(text)
                locks.end_blockers(self.connection, policy, timeout, "a non-atomic migration")
                delay = policy.delay(attempt)
                policy.note(f"  lock not granted in {lock_timeout:g} s; retrying in {delay:g} s")
                time.sleep(delay)
                continue
            if statement_timeout is not None:
                self._restore_statement_timeout(local)
            return result

    def _set_timeouts(self, lock: float, statement: float | None, local: bool) -> None:
        with self.connection.cursor() as cursor:
            if self._saved_timeouts is None:
                cursor.execute(SHOW_TIMEOUTS)
                self._saved_timeouts = cursor.fetchone()
            original_statement = self._saved_timeouts[1]
            cursor.execute(
                SET_TIMEOUTS,
                {
                    "lock": _ms(lock),
                    "statement": _ms(statement) if statement is not None else original_statement,
                    "local": local,
                },
            )

    def _restore_statement_timeout(self, local: bool) -> None:
        assert self._saved_timeouts is not None
        with self.connection.cursor() as cursor:
            cursor.execute(
                SET_STATEMENT_TIMEOUT, {"statement": self._saved_timeouts[1], "local": local}
            )

    def _backend_pid(self) -> int:
        self.connection.ensure_connection()
        return self.connection.connection.info.backend_pid

    def _watch_connection(self) -> dict:
        if self._watch_params is None:
            self._watch_params = locks.side_connection_params(self.connection)
        return self._watch_params

    def _drop_invalid_index(self, sql: str) -> None:
        """A CREATE INDEX CONCURRENTLY that gave up leaves an invalid index behind; drop
        it before trying again, or the retry fails on "already exists"."""
        index = locks.concurrent_index(sql)
        if index is None:
            return
        name = self.quote_name(join_table(index[0], index[1]))
        with self.connection.cursor() as cursor:
            cursor.execute(INVALID_INDEX, {"index": name})
            if cursor.fetchone():
                cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS " + name)

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
