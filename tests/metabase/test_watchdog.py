"""``manage.py metabase_watchdog`` against real sessions of the Metabase role.

The sessions are psycopg connections logged in as the role with its password; each one
first does what the SQL editor can always do for itself (lift its statement timeout,
give itself settings), then the watchdog has to undo it. Waiting is on the catalog
(pg_stat_activity says the statement is past the limit), never on a clock.
"""

from __future__ import annotations

import io
import threading

import psycopg
import pytest
from django.core.management import call_command
from psycopg import errors, sql

from audit.models import ActivityLog
from tests.metabase.support import execute, fetch, login, metabase_roles, run

# metabase_access creates and alters roles: the instance's administrator, here the
# cluster's superuser, by name (tests/db/roles.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_as_superuser"),
]


@pytest.fixture
def granted(monkeypatch):
    with metabase_roles(monkeypatch) as access:
        # A 1 s statement timeout: the limit the watchdog enforces.
        run(*access.args, "--statement-timeout", "1s", "--idle-in-transaction-timeout", "1s")
        yield access


def watchdog(access) -> str:
    out = io.StringIO()
    call_command(
        "metabase_watchdog",
        *access.args,
        "--statement-timeout",
        "1s",
        "--idle-in-transaction-timeout",
        "1s",
        stdout=out,
    )
    return out.getvalue()


def wait_until_overdue(role: str, state: str) -> int:
    """The pid of the role's backend in ``state`` for more than 1 s (polls the catalog)."""
    import time

    for _ in range(600):
        rows = fetch(
            "SELECT pid FROM pg_stat_activity WHERE usename = %(r)s AND state = %(s)s AND "
            "now() - CASE WHEN state = 'active' THEN query_start ELSE state_change END "
            "> interval '1 s'",
            {"r": role, "s": state},
        )
        if rows:
            return rows[0][0]
        time.sleep(0.1)
    raise AssertionError(f"no backend of {role} in state {state} past 1 s")


def test_a_statement_that_lifted_its_own_timeout_is_cancelled_and_audited(granted):
    outcome: dict = {}

    def editor() -> None:
        with login(granted) as conn:
            conn.execute("SELECT set_config('statement_timeout', '0', false)")
            try:
                conn.execute("SELECT pg_sleep(600)")
                outcome["result"] = "finished"
            except errors.QueryCanceled as exc:
                outcome["result"] = str(exc)

    thread = threading.Thread(target=editor)
    thread.start()
    try:
        pid = wait_until_overdue(granted.login, "active")
        out = watchdog(granted)
        assert f"cancelled backend {pid} of {granted.login}" in out
    finally:
        thread.join(timeout=120)
    assert "canceling statement due to user request" in outcome["result"]
    entry = ActivityLog.objects.get(action="metabase_watchdog.cancel")
    assert entry.resource_id == granted.login
    assert str(pid) in entry.object_repr


def test_a_session_idle_in_a_transaction_past_the_limit_is_ended(granted):
    with login(granted) as conn:
        conn.execute("SET idle_in_transaction_session_timeout = 0")
        conn.autocommit = False
        conn.execute("SELECT 1")
        pid = wait_until_overdue(granted.login, "idle in transaction")
        out = watchdog(granted)
        assert f"ended backend {pid} of {granted.login}" in out
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert ActivityLog.objects.filter(action="metabase_watchdog.terminate").count() == 1


def test_settings_the_role_gave_itself_are_reset_and_audited(granted):
    with login(granted) as conn:
        conn.execute("SET TRANSACTION READ WRITE")  # autocommit: this statement only
        conn.execute("BEGIN READ WRITE")
        conn.execute("ALTER ROLE CURRENT_USER SET work_mem = '1GB'")
        conn.execute("ALTER ROLE CURRENT_USER SET statement_timeout = 0")
        conn.execute("COMMIT")
    out = watchdog(granted)
    assert f"reset work_mem = 1GB set for {granted.login}" in out
    assert f"set statement_timeout = 1000 ms for {granted.login} (was 0)" in out
    with login(granted) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1s",)
        assert conn.execute("SHOW work_mem").fetchone() != ("1GB",)
    assert ActivityLog.objects.filter(action="metabase_watchdog.converge").count() == 2
    assert "nothing to do" in watchdog(granted)


def test_large_objects_the_role_owns_are_unlinked(granted):
    # Where PUBLIC could still create large objects (before metabase_access took it).
    execute("GRANT EXECUTE ON FUNCTION lo_from_bytea(oid, bytea) TO PUBLIC")
    with login(granted) as conn:
        conn.execute("BEGIN READ WRITE")
        (oid,) = conn.execute("SELECT lo_from_bytea(0, '\\x01'::bytea)").fetchall()[0]
        conn.execute("COMMIT")
    out = watchdog(granted)
    assert f"unlinked large object {oid} owned by {granted.login}" in out
    assert "revoke EXECUTE on pg_catalog.lo_from_bytea(oid,bytea) from PUBLIC" in out
    assert fetch("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %(o)s", {"o": oid}) == [
        (0,)
    ]
    assert ActivityLog.objects.filter(action="metabase_watchdog.unlink").count() == 1


def test_a_non_superuser_watchdog_unlinks_through_a_membership_it_never_keeps(granted):
    """As on Cloud SQL: the watchdog's role is no superuser, only the roles' manager."""
    manager = f"{granted.group}_mgr"
    execute(
        sql.SQL("CREATE ROLE {} CREATEROLE NOLOGIN IN ROLE pg_signal_backend").format(
            sql.Identifier(manager)
        )
    )
    # What CREATE ROLE by a CREATEROLE user leaves from 16 on: ADMIN, no INHERIT, no SET.
    version = fetch("SELECT current_setting('server_version_num')::int")[0][0]
    options = "ADMIN OPTION, INHERIT FALSE, SET FALSE" if version >= 160000 else "ADMIN OPTION"
    execute(
        sql.SQL("GRANT {} TO {} WITH " + options).format(
            sql.Identifier(granted.login), sql.Identifier(manager)
        )
    )
    execute("GRANT EXECUTE ON FUNCTION lo_from_bytea(oid, bytea) TO PUBLIC")
    try:
        with login(granted) as conn:
            conn.execute("BEGIN READ WRITE")
            (oid,) = conn.execute("SELECT lo_from_bytea(0, '\\x02'::bytea)").fetchall()[0]
            conn.execute("COMMIT")
        from django.db import connection

        connection.ensure_connection()
        from dbroles import watchdog as module
        from dbroles.metabase import AccessConfig

        raw = connection.connection
        raw.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(manager)))
        try:
            actions = module._unlink_large_objects(
                raw, AccessConfig(group_role=granted.group, login_role=granted.login)
            )
        finally:
            raw.execute("RESET ROLE")
        assert [a.summary for a in actions] == [
            f"unlinked large object {oid} owned by {granted.login}"
        ]
        assert fetch(
            "SELECT count(*) FILTER (WHERE NOT admin_option), count(*) FROM pg_auth_members "
            "WHERE roleid = %(r)s::regrole AND member = %(m)s::regrole",
            {"r": granted.login, "m": manager},
        ) == [(0, 1)]  # its own membership left, the transaction's one gone
    finally:
        execute("REVOKE EXECUTE ON FUNCTION lo_from_bytea(oid, bytea) FROM PUBLIC")
        execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(manager)))
