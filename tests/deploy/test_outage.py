"""A database that is down or full: every page answers a plain 503, logged once.

The failures are real: the connection settings point at a port nobody listens on, or
at a role whose connection limit is reached; nothing is mocked.
"""

from __future__ import annotations

import logging
import socket
import uuid

import psycopg
import pytest
from django.db import connection
from django.test import Client
from psycopg import sql

from accounts.models import User
from tests.diagnostics.support import connect

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at"),
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def logged_in() -> Client:
    user = User.objects.create_superuser(email="root@example.com", password="a-long-password-1")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def settings_dict_override():
    saved = dict(connection.settings_dict)

    def override(**values):
        connection.close()
        connection.settings_dict.update(values)

    yield override
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


def test_an_outage_is_a_plain_503_logged_once_and_recovers_by_itself(
    logged_in, settings_dict_override, caplog, settings
):
    settings.OUTAGE_LOG_INTERVAL_SECONDS = 3600
    assert logged_in.get("/admin/").status_code == 200
    real_port = connection.settings_dict["PORT"]

    settings_dict_override(PORT=str(_closed_port()))
    with caplog.at_level(logging.INFO):
        pages = [logged_in.get(path) for path in ["/admin/", "/admin/core/codexsession/"] * 5]

    assert {p.status_code for p in pages} == {503}
    assert all("<h1>Database unavailable</h1>" in p.content.decode() for p in pages)
    assert all(p["Retry-After"] for p in pages)
    # Ten failed requests, one log line; no ERROR traceback per request.
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelname) for r in problems] == [("portal.outage", "WARNING")]
    assert "database unavailable" in problems[0].getMessage()

    settings_dict_override(PORT=real_port)
    assert logged_in.get("/admin/").status_code == 200


@pytest.fixture
def full_role():
    """A login role whose connection limit is 0: every connection it opens is refused
    with SQLSTATE 53300, as when max_connections is reached."""
    name, password = f"portal_full_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with connect() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 0 PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    yield name, password
    with connect() as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_past_the_connection_limit_pages_answer_database_busy(
    logged_in, settings_dict_override, full_role
):
    name, password = full_role
    with pytest.raises(psycopg.OperationalError, match="too many connections"):
        psycopg.connect(**{**_params(), "user": name, "password": password})

    real = {
        "USER": connection.settings_dict["USER"],
        "PASSWORD": connection.settings_dict["PASSWORD"],
    }
    settings_dict_override(USER=name, PASSWORD=password)
    try:
        response = logged_in.get("/admin/")
        ready = Client().get("/readyz")
    finally:
        settings_dict_override(**real)

    assert response.status_code == 503
    assert "<h1>Database busy</h1>" in response.content.decode()
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "reason": "database busy: no free connection"}


def _params() -> dict:
    cfg = connection.settings_dict
    return {
        "host": cfg["HOST"],
        "port": cfg["PORT"],
        "dbname": cfg["NAME"],
        "connect_timeout": 5,
    }


def test_other_errors_stay_500():
    from django.db import DataError

    from portal.outage import classify

    assert classify(DataError("invalid input syntax")) is None
    assert classify(ValueError("not a database error")) is None


def test_a_failed_connection_is_not_retried_by_every_query_of_the_moment(monkeypatch):
    """Against a hung server each attempt costs connect_timeout; within a second of a
    failure the web process does not try again (a request touches the database several
    times), and after it, it does: recovery is not delayed longer than that."""
    from portal import outage

    monkeypatch.setenv("PORTAL_WEB_PROCESS", "1")
    monkeypatch.setattr(outage, "_recent_failures", outage._RecentFailures())
    port = _closed_port()
    attempts: list[int] = []

    def connect():
        attempts.append(1)
        return psycopg.connect(host="127.0.0.1", port=port, dbname="x", connect_timeout=2)

    for _ in range(3):
        with pytest.raises(psycopg.OperationalError):
            outage.guarded_connect("bench", connect)
    assert len(attempts) == 1

    monkeypatch.setattr(outage, "FAIL_FAST_SECONDS", 0.0)
    # Within the same request, still no second wait...
    with pytest.raises(psycopg.OperationalError):
        outage.guarded_connect("bench", connect)
    assert len(attempts) == 1
    # ...the next request tries again.
    outage._new_request()
    with pytest.raises(psycopg.OperationalError):
        outage.guarded_connect("bench", connect)
    assert len(attempts) == 2
    # Outside the web process (migrate, seed_demo) every attempt is made.
    monkeypatch.delenv("PORTAL_WEB_PROCESS")
    monkeypatch.setattr(outage, "FAIL_FAST_SECONDS", 60.0)
    outage._new_request()
    for _ in range(2):
        with pytest.raises(psycopg.OperationalError):
            outage.guarded_connect("bench", connect)
    assert len(attempts) == 4
