"""The suite's database roles: every test's ``default`` connection is the application role.

The test database is made the way a deployment's is (``devdb.prepare_database``: the
superuser creates the database and its extensions and converges the declared roles
with ``db_roles``' plan), migrated by the migrator (``django_db_setup`` in
tests/conftest.py), and served to the tests as the application role, which owns
nothing. A test that needs more asks for it by name:

- ``superuser_params()`` / ``migrator_params()``: psycopg connection parameters of the
  test database as the cluster's superuser or as the migrator, for a connection of the
  test's own (committed work, outside the test's transaction);
- the ``default_as_superuser`` / ``default_as_migrator`` fixtures (tests/conftest.py):
  the test's ``default`` connection itself as that role, set up before the test's
  transaction begins (so a test's roles and grants still roll back with it); or the
  ``@pytest.mark.db_role("superuser" | "migrator")`` marker, which does the same from
  before any fixture (for a module already marked ``django_db``);
- ``analyze()``: ANALYZE as the tables' owner;
- ``inserts_refused()``: a real database error on every INSERT into a table.

tests/audit/test_application_role.py fails if the suite's own connection is anything
but the application role.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connections

import devdb

SUPERUSER = devdb.SUPERUSER_KEY
MIGRATOR = "migrator"
APPLICATION = "application"


def cluster() -> devdb.DevDB:
    """The embedded cluster the settings connect to (already running: a fast path)."""
    return devdb.ensure_running()


def role_name(role: str) -> str:
    return cluster().credentials(role)[0]


def params(role: str, dbname: str | None = None) -> dict[str, Any]:
    """libpq parameters of the test database (or ``dbname``) as ``role``."""
    cfg = connections["default"].settings_dict
    user, password = cluster().credentials(role)
    return {
        "host": cfg["HOST"],
        "port": cfg["PORT"],
        "user": user,
        "password": password,
        "dbname": dbname or cfg["NAME"],
    }


def superuser_params(dbname: str | None = None) -> dict[str, Any]:
    return params(SUPERUSER, dbname)


def migrator_params(dbname: str | None = None) -> dict[str, Any]:
    return params(MIGRATOR, dbname)


@contextlib.contextmanager
def default_as(role: str) -> Iterator[None]:
    """The ``default`` connection as ``role`` inside the block (closed on the way in and out)."""
    conn = connections["default"]
    cfg = conn.settings_dict
    before = cfg["USER"], cfg["PASSWORD"]
    conn.close()
    cfg["USER"], cfg["PASSWORD"] = cluster().credentials(role)
    try:
        yield
    finally:
        conn.close()
        cfg["USER"], cfg["PASSWORD"] = before


@contextlib.contextmanager
def inserts_refused(schema: str, table: str, message: str) -> Iterator[None]:
    """Every INSERT into ``schema.table`` fails with ``message``: a temporary trigger made
    by the migrator, the table's owner (the application role may not make one), on a
    connection of its own, so it is committed and seen by the test's; dropped after."""
    import psycopg
    from psycopg import sql

    function = sql.Identifier(schema, "test_refuse_insert")
    target = sql.Identifier(schema, table)
    with psycopg.connect(**migrator_params(), autocommit=True) as owner:
        owner.execute(
            sql.SQL(
                "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$"
            ).format(function)
        )
        owner.execute(
            sql.SQL(
                "CREATE TRIGGER test_refuse_insert BEFORE INSERT ON {} "
                "FOR EACH ROW EXECUTE FUNCTION {}({})"
            ).format(target, function, sql.Literal(message))
        )
    try:
        yield
    finally:
        with psycopg.connect(**migrator_params(), autocommit=True) as owner:
            owner.execute(sql.SQL("DROP TRIGGER test_refuse_insert ON {}").format(target))
            owner.execute(sql.SQL("DROP FUNCTION {}()").format(function))


def recreate_test_database(name: str, *, keep: bool = False) -> None:
    """As the superuser: the test database ``name`` made afresh (``keep``: reused when it
    exists), its extensions created and the declared roles converged in it."""
    import psycopg
    from psycopg import sql

    db = cluster()
    with psycopg.connect(**superuser_params("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not keep:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        if not exists or not keep:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    devdb.prepare_database(db, name)


def drop_test_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(**superuser_params("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


#: The schemas of the suite's own apps (tests/db/chainapp, tests/db/lockapp): not the
#: project's, so not in the declaration; the application role gets in them what it has
#: in the project's (admin deletes of a user reach chain_b's rows through a foreign key).
TEST_APP_SCHEMAS = ("chain_a", "chain_b", "lockapp")


def grant_test_apps() -> None:
    """As the migrator, their owner: the application role's grants on the test apps'
    schemas that exist, and default privileges for their later tables. Run after the
    suite's migrate and after a test that migrates them to zero and back."""
    import psycopg
    from psycopg import sql

    app = sql.Identifier(role_name(APPLICATION))
    with psycopg.connect(**migrator_params(), autocommit=True) as conn:
        present = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [list(TEST_APP_SCHEMAS)]
        ).fetchall()
        for (name,) in present:
            schema = sql.Identifier(name)
            for statement in (
                "GRANT USAGE ON SCHEMA {schema} TO {app}",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app}",
                "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {app}",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
                "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
                "GRANT USAGE, SELECT ON SEQUENCES TO {app}",
            ):
                conn.execute(sql.SQL(statement).format(schema=schema, app=app))


def analyze(*tables: str) -> None:
    """ANALYZE ``tables`` as their owner, the migrator, on a connection of its own (the
    application role may not: PostgreSQL skips the table with a warning). Sees committed
    rows only, so the tests that use it are transactional.

    The test's own writes reach pg_stat_user_tables first (its backend flushes them on
    its next statement): counts landing after the ANALYZE would make the fresh
    statistics look stale to the admin's estimate."""
    import psycopg
    from psycopg import sql

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")
    with psycopg.connect(**migrator_params(), autocommit=True) as conn:
        for table in tables:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(*table.split("."))))
