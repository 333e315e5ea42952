"""The psycopg pool facing a silent server, a full pool, and a database restart.

Real servers only: a TCP listener that accepts and never answers (as a hung database
does), the test cluster itself, and for the restart a small cluster of its own, stopped
and started again. Each test is bounded by the pool's own timeouts (about a second).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection as default_connection
from django.db import connections
from django.test import Client

from accounts.models import User
from portal import outage
from tests.bench.load import hung_listener
from tests.diagnostics.support import connect

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at"),
]

# The default alias's wrapper (the portal's backend: pool, close_pool).
connection: Any = default_connection

POOL = {"min_size": 1, "max_size": 2, "timeout": 1.0, "reconnect_timeout": 0.5}


@pytest.fixture
def web_process(monkeypatch):
    # The request bounds and the outage handling apply to the web process only.
    monkeypatch.setenv("PORTAL_WEB_PROCESS", "1")
    # Logged once per interval: this test's reports must not silence another test's.
    monkeypatch.setattr(outage, "_throttle", outage._Throttle())


@pytest.fixture
def logged_in() -> Client:
    user = User.objects.create_superuser(email="root@example.com", password="a-long-password-1")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def pooled() -> Iterator:
    """Switch the default alias to the pool with ``settings`` values; restored after."""
    saved = {**connection.settings_dict, "OPTIONS": dict(connection.settings_dict["OPTIONS"])}

    def switch(pool: dict, **values) -> None:
        connection.close()
        connection.settings_dict.update(values, CONN_MAX_AGE=0)
        connection.settings_dict["OPTIONS"] = {**saved["OPTIONS"], "pool": pool}

    yield switch
    connection.close()
    if connection.settings_dict["OPTIONS"].get("pool"):
        connection.close_pool()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


@pytest.mark.parametrize("server", [hung_listener, closed_port], ids=["silent", "down"])
def test_a_pool_that_cannot_connect_says_unavailable_not_busy(
    web_process, logged_in, pooled, server, caplog
):
    with server() as port, caplog.at_level(logging.WARNING):
        pooled(POOL, HOST="127.0.0.1", PORT=str(port))
        page = logged_in.get("/admin/")
        ready = Client().get("/readyz")
        connection.close()
        connection.close_pool()

    assert page.status_code == 503
    assert "<h1>Database unavailable</h1>" in page.content.decode()
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "reason": "database unreachable"}
    # The pool retries several times a second; its warning is logged once per interval.
    attempts = [r for r in caplog.records if r.getMessage().startswith("error connecting in")]
    assert len(attempts) <= 1


def test_a_full_pool_says_busy(web_process, logged_in, pooled):
    pooled({**POOL, "max_size": 1, "timeout": 0.5})
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        # Another request thread holding the pool's only connection.
        try:
            connections["default"].ensure_connection()
            holding.set()
            release.wait(30)
        finally:
            connections["default"].close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        page = logged_in.get("/admin/")
        ready = Client().get("/readyz")
    finally:
        release.set()
        holder.join(30)

    assert page.status_code == 503
    assert "<h1>Database busy</h1>" in page.content.decode()
    assert ready.json() == {"status": "unavailable", "reason": "database busy: no free connection"}
    # Once the connection is back, the same pool serves again.
    assert Client().get("/readyz").json() == {"status": "ready"}


def test_the_pool_recovers_when_its_connections_die(web_process, logged_in, pooled):
    """Every connection of the pool killed by the server (as a restart does: 57P01);
    the next requests get working connections from the same pool, by themselves: no
    restart, and no dead connection handed out to a request (each is checked first)."""
    pooled({**POOL, "min_size": 2, "max_size": 2})
    assert logged_in.get("/admin/").status_code == 200
    pool = connection.pool
    connection.close()
    with connect() as admin:
        killed = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1

    pages = [logged_in.get("/admin/") for _ in range(3)]

    assert [p.status_code for p in pages] == [200, 200, 200]
    assert connection.pool is pool
    stats = pool.get_stats()
    assert stats.get("returns_bad", 0) + stats.get("connections_lost", 0) >= 1, stats
