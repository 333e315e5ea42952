"""/healthz and /readyz, in process against the test database.

The production smoke test does the same through gunicorn, stopping and starting a real
database server; here the cases that need finer control: a host Django would refuse,
a port nobody listens on, a lock held past the readiness timeout.
"""

from __future__ import annotations

import logging
import socket

import psycopg
import pytest
from django.db import connection

# WhiteNoise warns when STATIC_ROOT has not been collected; static files are not under test.
pytestmark = pytest.mark.filterwarnings("ignore:No directory at")


def test_liveness_never_touches_the_database(client):
    # No django_db mark: any query here would fail the test.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_probes_are_answered_whatever_the_host_header(client):
    # Cloud Run's probes reach the container directly; their Host is not the service's.
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8080").status_code == 200
    assert client.head("/healthz", HTTP_HOST="10.1.2.3:8080").status_code == 200
    # Every other path still validates the host.
    assert client.get("/admin/login/", HTTP_HOST="10.1.2.3:8080").status_code == 400


def test_the_urls_resolve_to_the_same_views():
    from django.urls import resolve, reverse

    from portal import health

    assert reverse("healthz") == "/healthz"
    assert resolve("/readyz").func is health.readyz


@pytest.mark.django_db
def test_readiness_is_200_when_the_database_answers(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_readiness_is_503_when_the_database_refuses(client, settings, caplog):
    settings.OUTAGE_LOG_INTERVAL_SECONDS = 0
    connection.close()
    saved = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = str(_closed_port())
    try:
        with caplog.at_level(logging.WARNING):
            response = client.get("/readyz")
    finally:
        connection.settings_dict["PORT"] = saved
        connection.close()

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "database unreachable"}
    assert "no-store" in response["Cache-Control"]
    # One warning naming the failure; no ERROR per failed probe for Error Reporting.
    failures = [(r.name, r.levelname) for r in caplog.records if r.levelno >= logging.WARNING]
    assert failures == [("portal.outage", "WARNING")]
    assert "database unreachable" in caplog.records[0].getMessage()


@pytest.mark.django_db(transaction=True)
def test_readiness_gives_up_on_a_database_that_does_not_answer_in_time(client, settings):
    settings.READYZ_TIMEOUT = 0.3
    params = connection.get_connection_params()
    params.pop("cursor_factory")
    # Another session holds the table the check reads, past the readiness timeout.
    with psycopg.connect(**params) as blocker:
        blocker.execute("LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE")
        response = client.get("/readyz")
        blocker.rollback()

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "waiting for a lock"}
    assert client.get("/readyz").status_code == 200
