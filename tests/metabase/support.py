"""Helpers for the Metabase access tests: fresh roles, the command, a real login.

Roles are cluster-wide while the test database is not, so every test gets role names of
its own and drops them afterwards (with DROP OWNED, which also revokes what they hold in
the test database).
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import sql

ENV_VARS = (
    "METABASE_DB_PASSWORD",
    "METABASE_GROUP_ROLE",
    "METABASE_DB_USER",
    "METABASE_MIGRATION_ROLE",
    "METABASE_CONNECTION_LIMIT",
    "METABASE_STATEMENT_TIMEOUT",
    "METABASE_IDLE_IN_TRANSACTION_TIMEOUT",
)


@dataclass(frozen=True)
class Access:
    group: str
    login: str
    password: str

    @property
    def args(self) -> list[str]:
        return ["--group-role", self.group, "--login-role", self.login]


def fetch(query: str | sql.Composable, params: dict | None = None) -> list[tuple]:
    """Run a query as the test's own (superuser) connection."""
    with connection.cursor() as cursor:
        cursor.execute(query, params or {})
        return cursor.fetchall()


def execute(query: str | sql.Composable, params: dict | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(query, params or {})


def role_exists(name: str) -> bool:
    return bool(fetch("SELECT 1 FROM pg_roles WHERE rolname = %(n)s", {"n": name}))


def drop_roles(*names: str) -> None:
    for name in names:
        if role_exists(name):
            execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def unique_name(kind: str) -> str:
    return f"mbt_{secrets.token_hex(4)}_{kind}"


@contextmanager
def metabase_roles(monkeypatch: pytest.MonkeyPatch) -> Iterator[Access]:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    prefix = unique_name("x")[:-2]
    access = Access(f"{prefix}_group", f"{prefix}_login", secrets.token_urlsafe(18))
    monkeypatch.setenv("METABASE_DB_PASSWORD", access.password)
    try:
        yield access
    finally:
        drop_roles(access.login, access.group)


def run(*args: str) -> str:
    """``manage.py metabase_access <args>``; its output."""
    out = io.StringIO()
    call_command("metabase_access", *args, stdout=out)
    return out.getvalue()


def login(access: Access, password: str | None = None) -> psycopg.Connection:
    """Log in as the Metabase role over TCP with its password, as Metabase does."""
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        dbname=settings["NAME"],
        user=access.login,
        password=access.password if password is None else password,
        autocommit=True,
        connect_timeout=10,
    )


def relations(schemas: list[str], relkinds: str = "rvmfp") -> list[tuple[str, str]]:
    """(schema, name) of every relation of these kinds in these schemas, from the catalog."""
    return fetch(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(%(s)s) AND c.relkind = ANY(%(k)s) ORDER BY 1, 2",
        {"s": schemas, "k": list(relkinds)},
    )
