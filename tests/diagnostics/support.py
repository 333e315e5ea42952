"""Helpers and fixtures of the diagnostics tests: real roles, real sessions, real databases.

Everything runs against the embedded PostgreSQL: login roles with passwords over TCP
(scram), second connections in threads (pg_sleep, LOCK TABLE), a second database.
Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import contextlib
import copy
import secrets
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from psycopg import sql
from psycopg.abc import Params, QueryNoTemplate

from tests.db import roles

# The URL contract of the diagnostics pages: /admin/diagnostics/ ("overview") and
# /admin/diagnostics/<slug>/ for the others. Stated once for every test that walks them.
PAGE_SLUGS = (
    "overview",
    "activity",
    "connections",
    "blocking",
    "queries",
    "space",
    "indexes",
    "maintenance",
    "settings",
    "privileges",
    "replication",
)

MONITOR_ROLE = "portal_diag_monitor"
NOBODY_ROLE = "portal_diag_nobody"
KINDS = ("superuser", "pg_monitor", "nothing")


def server_params(dbname: str | None = None) -> dict[str, Any]:
    """Connection parameters of the test database as the superuser of the cluster (the
    suite's own connection is the application role's: tests/db/roles.py)."""
    return roles.superuser_params(dbname)


def connect(
    *,
    user: str | None = None,
    password: str | None = None,
    dbname: str | None = None,
    autocommit: bool = True,
    application_name: str = "diagnostics-test",
) -> psycopg.Connection:
    params = server_params(dbname)
    if user is not None:
        params["user"] = user
        params["password"] = password
    return psycopg.connect(
        **params, autocommit=autocommit, application_name=application_name, connect_timeout=10
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def scalar(conn: psycopg.Connection, query: QueryNoTemplate, params: Params | None = None) -> Any:
    """The first column of the row ``query`` returns; a missing row fails the test."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, f"no row from {query!r}"
    return row[0]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def committed(
    statements: Sequence[QueryNoTemplate], cleanup: Sequence[QueryNoTemplate]
) -> Iterator[None]:
    """Run DDL in its own committed transaction (visible to every connection), undo after."""
    with connect() as conn:
        for statement in statements:
            conn.execute(statement)
    try:
        yield
    finally:
        with connect() as conn:
            for statement in cleanup:
                conn.execute(statement)


@dataclass
class Background:
    """A statement running in another connection, in a thread."""

    pid: int
    backend_start: Any
    thread: threading.Thread
    error: list[BaseException]
    conn: psycopg.Connection


@contextlib.contextmanager
def running(
    statement: QueryNoTemplate,
    *,
    setup: Sequence[QueryNoTemplate] = (),
    user: str | None = None,
    password: str | None = None,
    application_name: str = "diagnostics-test",
    wait_state: str = "active",
) -> Iterator[Background]:
    """Run ``statement`` in a second connection until it ends or is cancelled (as the
    superuser unless ``user`` is given: a session the portal must act on has to be
    another's, pg_signal_backend never reaches a superuser's)."""
    conn = connect(user=user, password=password, application_name=application_name)
    for s in setup:
        conn.execute(s)
    row = conn.execute(
        "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    ).fetchone()
    assert row is not None  # pg_stat_activity always lists the session asking
    pid, backend_start = row
    errors: list[BaseException] = []

    def work() -> None:
        try:
            conn.execute(statement)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    with connect() as watcher:
        wait_for(
            lambda: watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = %s"
                " AND query NOT LIKE 'SELECT pid, backend_start%%'",
                (pid, wait_state),
            ).fetchone(),
            what=f"session {pid} to be {wait_state}",
        )
    try:
        yield Background(pid, backend_start, thread, errors, conn)
    finally:
        with connect() as admin, contextlib.suppress(psycopg.Error):
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        thread.join(timeout=20)
        with contextlib.suppress(psycopg.Error):
            conn.close()


@contextlib.contextmanager
def _extra_alias(alias: str, ensure_connection: Any, **overrides: Any) -> Iterator[str]:
    """Register database alias ``alias`` (a copy of the test database's, with overrides)
    and offer it on the diagnostics pages."""
    cfg = copy.deepcopy(connections["default"].settings_dict)
    cfg.update(overrides)
    connections.settings[alias] = cfg
    before = list(settings.DIAGNOSTICS_DATABASES)
    settings.DIAGNOSTICS_DATABASES = [*before, alias]
    wrapper = connections[alias]
    # This wrapper alone gets the unblocked method back: a deliberate instance patch.
    wrapper.ensure_connection = types.MethodType(ensure_connection, wrapper)  # type: ignore[method-assign]
    try:
        yield alias
    finally:
        settings.DIAGNOSTICS_DATABASES = before
        if alias in {c.alias for c in connections.all(initialized_only=True)}:
            with contextlib.suppress(Exception):
                connections[alias].close()
            del connections[alias]
        del connections.settings[alias]


@pytest.fixture
def add_alias(db, django_db_blocker) -> Iterator[Callable[..., str]]:
    """``add_alias(name, **settings)`` registers a database alias for this test only.

    Django's test case only lets a test connect through the aliases declared before it
    started, and pytest-django blocks the rest: the aliases added here (another role,
    another database) get the unpatched method back, which pytest-django keeps.
    """
    real = django_db_blocker._real_ensure_connection
    with contextlib.ExitStack() as stack:
        yield lambda alias, **overrides: stack.enter_context(_extra_alias(alias, real, **overrides))


@dataclass(frozen=True)
class Target:
    """The database alias the diagnostics pages use, and who it connects as."""

    kind: str  # superuser, pg_monitor, nothing
    alias: str
    role: str
    password: str | None

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        if self.kind == "superuser":
            return connect(**kwargs)
        return connect(user=self.role, password=self.password, **kwargs)


@pytest.fixture(scope="session")
def diag_roles(django_db_setup, django_db_blocker) -> Iterator[dict[str, str]]:
    """Two LOGIN roles with passwords: one holding only pg_monitor, one holding nothing."""
    passwords = {MONITOR_ROLE: secrets.token_urlsafe(16), NOBODY_ROLE: secrets.token_urlsafe(16)}
    with django_db_blocker.unblock():
        with connect() as conn:
            for role, password in passwords.items():
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                verb = "ALTER" if exists.fetchone() else "CREATE"
                conn.execute(
                    sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            conn.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(MONITOR_ROLE)))
        yield passwords
        with connect() as conn:
            for role in passwords:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                with contextlib.suppress(psycopg.Error):
                    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture(params=KINDS)
def diag_target(request, diag_roles, add_alias) -> Iterator[Target]:
    """The diagnostics pages seen as a superuser, as a pg_monitor role, as a bare role."""
    kind = request.param
    if kind == "superuser":
        user, password = roles.cluster().credentials(roles.SUPERUSER)
        yield Target(kind, add_alias("diag_superuser", USER=user, PASSWORD=password), user, None)
        return
    role = MONITOR_ROLE if kind == "pg_monitor" else NOBODY_ROLE
    alias = add_alias(f"diag_{kind}", USER=role, PASSWORD=diag_roles[role])
    yield Target(kind, alias, role, diag_roles[role])
