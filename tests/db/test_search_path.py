"""The backend under any ``search_path``: migrate, showmigrations and inspectdb.

PostgreSQL resolves a bare table name through ``search_path``; the backend must find
Django's own tables (named bare) wherever that resolution puts them, and the app
tables (named ``schema"."table``) in their schema, whether or not that schema is on
the path. Each case sets the path the way an operator would (per database for new
sessions, like ``ALTER ROLE ... SET``), then checks the commands against the catalog.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import sql

import devdb
from tests.db import roles

# Migrations run as the migrator, the owner of every schema (tests/db/roles.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_migrator"),
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def fetch(query: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params or {})
        return cursor.fetchall()


def execute(statement: sql.Composable | str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


def showmigrations() -> str:
    out = io.StringIO()
    call_command("showmigrations", stdout=out)
    return out.getvalue()


def migrate_output() -> str:
    out = io.StringIO()
    call_command("migrate", verbosity=1, stdout=out)
    return out.getvalue()


def relations_in(schema: str) -> list[str]:
    rows = fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %(s)s",
        {"s": schema},
    )
    return sorted(r[0] for r in rows)


@pytest.fixture
def database_search_path() -> Iterator:
    """Set the test database's search_path for new sessions, and reconnect."""
    dbname = connection.settings_dict["NAME"]

    def as_superuser(statement: sql.Composed) -> None:
        # ALTER DATABASE is the database owner's: the superuser's own connection.
        with psycopg.connect(**roles.superuser_params(), autocommit=True) as admin:
            admin.execute(statement)

    def set_path(path: str) -> None:
        as_superuser(
            sql.SQL("ALTER DATABASE {} SET search_path = {}").format(
                sql.Identifier(dbname), sql.SQL(path)
            )
        )
        connection.close()

    yield set_path
    as_superuser(sql.SQL("ALTER DATABASE {} RESET search_path").format(sql.Identifier(dbname)))
    connection.close()


def assert_nothing_unapplied_and_migrate_is_a_no_op() -> None:
    listing = showmigrations()
    assert "[X]" in listing
    assert "[ ]" not in listing, listing
    assert "No migrations to apply." in migrate_output()


def test_a_schema_named_after_the_role_does_not_hide_djangos_tables():
    """``"$user", public`` with a role-named schema: current_schema() is that schema,
    while django_migrations and the auth tables stay in public (still visible)."""
    role = fetch("SELECT current_user")[0][0]
    execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(role)))
    try:
        assert fetch("SELECT current_schema()") == [(role,)]
        assert_nothing_unapplied_and_migrate_is_a_no_op()
        # Nothing was created a second time in the role's schema.
        assert relations_in(role) == []
        out = io.StringIO()
        call_command("inspectdb", "django_content_type", stdout=out)
        assert "db_table = 'django_content_type'" in out.getvalue()
    finally:
        execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(role)))


def test_an_app_schema_first_on_the_path_keeps_qualified_names(database_search_path):
    database_search_path("core, public")
    assert fetch("SELECT current_schema()") == [("core",)]
    assert_nothing_unapplied_and_migrate_is_a_no_op()
    tables = connection.introspection.table_names()
    assert 'core"."execution_history' in tables
    assert "execution_history" not in tables
    assert "django_migrations" in tables
    out = io.StringIO()
    call_command("inspectdb", 'core"."projects', stdout=out)
    text = out.getvalue()
    assert 'db_table = \'core""."projects\'' in text or "db_table = 'core\".\"projects'" in text
    assert "owner = models.ForeignKey('AuthUsers'" in text


def _database_url(dbname: str, search_path: str) -> str:
    s = connection.settings_dict
    user = urllib.parse.quote(s["USER"], safe="")
    password = urllib.parse.quote(s["PASSWORD"] or "", safe="")
    options = urllib.parse.quote(f"-c search_path={search_path}", safe="")
    return f"postgres://{user}:{password}@{s['HOST']}:{s['PORT']}/{dbname}?options={options}"


def _manage(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=600,
        check=False,
    )


def test_a_path_without_public_migrates_a_fresh_database_once():
    """Django's tables go where the path puts bare names (the first schema); the app
    tables into their own schemas; a second migrate finds everything applied."""
    s = connection.settings_dict
    dbname = f"{s['NAME']}_pathless"
    # A new database as a deployment's: made by the superuser with the declared roles,
    # then migrated by the migrator (the test's connection).
    admin = psycopg.connect(**roles.superuser_params(s["NAME"]), autocommit=True)
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        devdb.prepare_database(roles.cluster(), dbname)
        with psycopg.connect(**roles.superuser_params(dbname), autocommit=True) as fresh:
            fresh.execute(
                sql.SQL("CREATE SCHEMA portal_sys AUTHORIZATION {}").format(
                    sql.Identifier(s["USER"])
                )
            )
        url = _database_url(dbname, "portal_sys")
        first = _manage(url, "migrate", "--no-input")
        assert first.returncode == 0, first.stderr[-3000:]
        listing = _manage(url, "showmigrations")
        assert listing.returncode == 0, listing.stderr[-3000:]
        assert "[ ]" not in listing.stdout and "[X]" in listing.stdout
        again = _manage(url, "migrate", "--no-input")
        assert again.returncode == 0, again.stderr[-3000:]
        assert "No migrations to apply." in again.stdout
        drift = _manage(url, "schema_drift")
        assert drift.returncode == 0, drift.stdout + drift.stderr[-3000:]
        inspect = _manage(url, "inspectdb", 'core"."codex_sessions', "django_migrations")
        assert "db_table = 'django_migrations'" in inspect.stdout
        assert "codex_sessions" in inspect.stdout
        with psycopg.connect(**roles.superuser_params(dbname)) as fresh:
            where = fresh.execute(
                "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relname IN ('django_migrations', 'django_content_type', 'auth_group')"
            ).fetchall()
            assert sorted(where) == [("portal_sys",)] * 3
            core = fresh.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'core' AND c.relname = 'codex_sessions'"
            ).fetchone()
            assert core == (1,)
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        admin.close()
