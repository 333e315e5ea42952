"""Pages under a lock or a slow query: every page answers within its bound, says why.

A second connection holds a real ``ACCESS EXCLUSIVE`` lock (the kind a migration or a
``VACUUM FULL`` takes) on one table while the page is requested; nothing is mocked.
The bounds come from the settings (panel lock wait 300 ms, list 1 s, showing a change page
1 s, saving one 3 s).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from django.test import Client

from core.models import CodexSession, ExecutionHistory
from tests.diagnostics.support import connect

EXECUTIONS = "/admin/core/executionhistory/"


@contextlib.contextmanager
def table_locked(table: str) -> Iterator[int]:
    """``LOCK TABLE table IN ACCESS EXCLUSIVE MODE`` held by another session; its pid."""
    with connect(autocommit=False, application_name="lock-holder") as conn:
        conn.execute(f"SET lock_timeout = '5s'; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        pid = row[0]
        try:
            yield pid
        finally:
            conn.rollback()


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.django_db
def test_a_locked_rollup_makes_one_dashboard_panel_unavailable_not_the_page(admin_client):
    with table_locked("core.execution_hours") as pid:
        response = admin_client.get("/admin/")

    assert response.status_code == 200
    page = _text(response)
    assert (
        "unavailable: waited longer than 300 ms for a lock "
        f"(pid {pid} holds AccessExclusiveLock on core.execution_hours)"
    ) in page
    # The other panels rendered.
    assert "Sessions today" in page and "Sessions by status" in page
    assert "Failed sandbox runs" in page


@pytest.mark.django_db
def test_a_locked_list_keeps_the_search_and_filters_and_names_the_holder(admin_client):
    url = f"{EXECUTIONS}?q=migration&tokens=3&o=-1"
    with table_locked("core.execution_history") as pid:
        response = admin_client.get(url)

    assert response.status_code == 503
    page = _text(response)
    assert f"pid {pid} holds AccessExclusiveLock on core.execution_history" in page
    assert "waited longer than 1 s for a lock" in page
    # The user's search and filters are all still there, and nothing says they were bad.
    assert 'name="q" value="migration"' in page
    assert '<input type="hidden" name="tokens" value="3">' in page
    assert "not valid" not in page and "Invalid" not in page
    assert "?q=migration&amp;tokens=3&amp;o=-1" in page  # try again, unchanged
    assert "last 24 hours only" in page and "without the search" in page


@pytest.mark.django_db
def test_a_list_that_times_out_twice_is_still_the_same_page_never_a_400(admin_client):
    with table_locked("core.execution_history"):
        first = admin_client.get(f"{EXECUTIONS}?q=x")
        second = admin_client.get(f"{EXECUTIONS}?q=x&e=1")

    assert first.status_code == second.status_code == 503
    assert 'name="q" value="x"' in _text(second)


@pytest.mark.django_db
def test_a_list_past_its_statement_timeout_says_it_took_too_long(admin_client, monkeypatch):
    from core.admin import ExecutionHistoryAdmin

    # A real statement over a real limit. An empty table can answer inside 1 ms on a
    # fast machine, so the search also waits 50 ms in PostgreSQL: an uncorrelated
    # subquery is a one-time filter, run once per statement whatever the row count (a
    # bare pg_sleep() in WHERE would run per row, never on an empty table).
    search = ExecutionHistoryAdmin.get_search_results

    def slow_search(self, request, queryset, term):
        queryset, may_have_duplicates = search(self, request, queryset, term)
        return queryset.extra(where=["(SELECT pg_sleep(0.05)) IS NOT NULL"]), may_have_duplicates

    monkeypatch.setattr(ExecutionHistoryAdmin, "get_search_results", slow_search)
    monkeypatch.setattr(ExecutionHistoryAdmin, "list_statement_timeout", "1ms")
    response = admin_client.get(f"{EXECUTIONS}?q=anything")

    assert response.status_code == 503
    page = _text(response)
    assert "the query took longer than 1 ms and was stopped" in page
    assert 'name="q" value="anything"' in page


@pytest.fixture
def committed_session(transactional_db) -> Iterator[CodexSession]:
    session = CodexSession.objects.create(
        session_id=uuid.uuid4(), user_id="u1", model="gpt-5", status="running"
    )
    ExecutionHistory.objects.create(session=session, prompt="hello")
    yield session


def _admin(transactional_db) -> Client:
    from accounts.models import User

    user = User.objects.create_superuser(email="root@example.com", password="a-long-password-1")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_a_change_page_whose_row_is_locked_answers_503_naming_the_holder(
    committed_session, transactional_db
):
    client = _admin(transactional_db)
    with table_locked("core.codex_sessions") as pid:
        response = client.get(f"/admin/core/codexsession/{committed_session.pk}/change/")

    assert response.status_code == 503
    page = _text(response)
    assert "This page took too long" in page
    assert f"pid {pid} holds AccessExclusiveLock on core.codex_sessions" in page


def test_the_latest_executions_panel_degrades_alone_on_the_session_page(
    committed_session, transactional_db
):
    client = _admin(transactional_db)
    with table_locked("core.execution_history") as pid:
        response = client.get(f"/admin/core/codexsession/{committed_session.pk}/change/")

    assert response.status_code == 200
    page = _text(response)
    assert str(committed_session.session_id) in page
    assert f"unavailable: waited longer than 300 ms for a lock (pid {pid}" in page


def test_bounds_reach_every_connection_of_the_web_process_only(monkeypatch):
    """gunicorn.conf.py marks the web process; the settings then bound every connection."""
    import subprocess
    import sys

    code = (
        "import django; django.setup(); from django.db import connection; "
        "c = connection.cursor(); c.execute('SHOW statement_timeout'); a = c.fetchone()[0]; "
        "c.execute('SHOW lock_timeout'); print(a, c.fetchone()[0])"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in {"PORTAL_WEB_PROCESS"}}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", DJANGO_ENV="test")
    env.pop("DATABASE_URL", None)
    command = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    web = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PORTAL_WEB_PROCESS": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert command.stdout.split() == ["0", "0"]  # migrate, seed_demo, snapshot_stats
    assert web.stdout.split() == ["5s", "1s"]


def test_lock_holder_lookup_is_empty_when_nothing_blocks(db):
    from portal.limits import lock_holders

    assert lock_holders(["core.codex_sessions"]) == []


def test_a_statement_error_that_is_not_a_timeout_still_fails_the_panel_context(db):
    from portal.limits import Unavailable, degrade

    context: dict = {}
    with degrade(context, "panel"):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM no_such_table_here")
    assert isinstance(context["panel"], Unavailable)
    assert "no_such_table_here" in str(context["panel"])


def test_psycopg_is_the_driver():
    # The SQLSTATE checks in portal.limits read psycopg's error attribute.
    assert psycopg.errors.LockNotAvailable.sqlstate == "55P03"


@pytest.fixture
def lock_timeouts_seen(monkeypatch) -> list[str]:
    """The lock_timeout PostgreSQL itself applies each time the session page reads its
    row (``SHOW lock_timeout`` just before ``get_object``), in order."""
    from django.db import connection

    from core.admin import CodexSessionAdmin

    seen: list[str] = []
    original = CodexSessionAdmin.get_object

    def get_object(self, request, object_id, from_field=None):
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            seen.append(cursor.fetchone()[0])
        return original(self, request, object_id, from_field)

    monkeypatch.setattr(CodexSessionAdmin, "get_object", get_object)
    return seen


def test_showing_a_change_page_waits_the_web_lock_bound_saving_waits_the_change_bound(
    committed_session, transactional_db, settings, lock_timeouts_seen
):
    """Read from PostgreSQL itself: the lock_timeout in effect when the page reads its
    row, for a GET and for a POST of the same page."""
    settings.WEB_LOCK_TIMEOUT_MS = 700
    settings.CHANGE_LOCK_TIMEOUT_MS = 2900
    client = _admin(transactional_db)
    url = f"/admin/core/codexsession/{committed_session.pk}/change/"
    assert client.get(url).status_code == 200
    client.post(url, {})  # an incomplete form: refused, but its row was read first
    assert lock_timeouts_seen[0] == "700ms"
    assert lock_timeouts_seen[-1] == "2900ms"


def test_under_the_web_bounds_a_change_page_is_shown_without_a_transaction_of_its_own(
    committed_session, transactional_db, settings, monkeypatch, lock_timeouts_seen
):
    """A web process's connections start with the web bounds (gunicorn.conf.py): showing
    a change page then sets no bounds of its own, and PostgreSQL still applies them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.limits import web_options

    options = connection.settings_dict["OPTIONS"]
    monkeypatch.setitem(
        options,
        "options",
        web_options(
            settings.WEB_STATEMENT_TIMEOUT_MS,
            settings.WEB_LOCK_TIMEOUT_MS,
            settings.WEB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
        ),
    )
    connection.close()
    client = _admin(transactional_db)
    url = f"/admin/core/codexsession/{committed_session.pk}/change/"
    try:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        assert lock_timeouts_seen == ["1s"]
        # No transaction, no SET of the page's own; only the story panel's statements
        # carry its shorter limits, in their own messages.
        sent = [q["sql"] for q in queries]
        assert not [q for q in sent if q in ("BEGIN", "COMMIT") or "set_config" in q], sent
        panel = (
            f"SET LOCAL statement_timeout = {settings.PANEL_STATEMENT_TIMEOUT_MS}; "
            f"SET LOCAL lock_timeout = {settings.PANEL_LOCK_TIMEOUT_MS}; "
        )
        carrying = [q for q in sent if q.startswith("SET LOCAL")]
        assert carrying and all(q.startswith(panel) for q in carrying), carrying
        assert any('"core"."execution_history"' in q for q in carrying), carrying
        client.post(url, {})  # a save still sets its own, longer lock bound
        assert lock_timeouts_seen[-1] == f"{settings.CHANGE_LOCK_TIMEOUT_MS // 1000}s"
    finally:
        connection.close()  # the next test's connection starts without these options


def test_outside_a_transaction_each_dashboard_panel_carries_its_limits(
    committed_session, transactional_db
):
    """Served as in production (autocommit, no transaction around the view): each
    panel's statements carry the panel limits in their own messages, a locked table
    costs only its own panel (the statements after the failed one run, nothing is left
    aborted), and the session's own limits are untouched after the page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _admin(transactional_db)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '4321ms'")
    with table_locked("core.execution_hours") as pid, CaptureQueriesContext(connection) as q:
        response = client.get("/admin/")
    page = _text(response)
    assert response.status_code == 200
    assert f"pid {pid} holds AccessExclusiveLock on core.execution_hours" in page
    assert "Sessions today" in page and "Latest failed sessions" in page
    sent = [x["sql"] for x in q]
    # No SET of the page's own and no transaction: the panels' statements carry the
    # panel limits, the lock-holder lookups of the panels that waited their shorter ones.
    assert not [x for x in sent if x in ("BEGIN", "COMMIT") or "set_config" in x], sent
    panel = "SET LOCAL statement_timeout = 2000; SET LOCAL lock_timeout = 300; "
    lookup = "SET LOCAL statement_timeout = 1000; SET LOCAL lock_timeout = 200; "
    carrying = [x for x in sent if x.startswith("SET LOCAL")]
    assert all(x.startswith((panel, lookup)) for x in carrying), carrying
    assert any("execution_hours" in x for x in carrying if x.startswith(panel)), carrying
    assert any("pg_locks" in x for x in carrying if x.startswith(lookup)), carrying
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "4321ms"
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"
