"""The idle timeout without a session write per request (portal/admin/sessions.py).

A signed-in user's requests re-save the session row at most once per
SESSION_REFRESH_SECONDS; a request after that interval pushes the expiry forward again.
The clock is moved by ageing the stored expiry, not by sleeping.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.audit.support import login, make_user

pytestmark = pytest.mark.django_db


def _session_writes(queries: list[dict]) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if "django_session" in q["sql"] and not q["sql"].lstrip().upper().startswith("SELECT")
    ]


def _signed_in():
    client, response = login(make_user("ann@example.com", is_superuser=True).email)
    assert response.status_code == 302
    return client, Session.objects.get()


def _age_stored_expiry(session: Session, seconds: int) -> None:
    """As if the session row had last been saved ``seconds`` ago."""
    expiry = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - seconds)
    Session.objects.filter(pk=session.pk).update(expire_date=expiry)


def test_requests_within_the_refresh_interval_do_not_write_the_session():
    client, session = _signed_in()
    _age_stored_expiry(session, settings.SESSION_REFRESH_SECONDS - 20)
    before = Session.objects.get(pk=session.pk).expire_date
    pages = [reverse("admin:index"), reverse("admin:core_codexsession_changelist")] * 3
    with CaptureQueriesContext(connection) as captured:
        for url in pages:
            assert client.get(url).status_code == 200
    assert _session_writes(captured.captured_queries) == []
    assert Session.objects.get(pk=session.pk).expire_date == before


def test_a_request_after_the_refresh_interval_extends_the_expiry():
    client, session = _signed_in()
    _age_stored_expiry(session, settings.SESSION_REFRESH_SECONDS + 1)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("admin:index")).status_code == 200
    assert len(_session_writes(captured.captured_queries)) == 1
    extended = Session.objects.get(pk=session.pk).expire_date
    assert extended >= timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - 5)
    # ...and the requests right after it write nothing.
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("admin:index")).status_code == 200
    assert _session_writes(captured.captured_queries) == []


def test_an_idle_session_still_expires():
    client, session = _signed_in()
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_signing_out_is_not_undone_by_the_refresh():
    client, session = _signed_in()
    _age_stored_expiry(session, settings.SESSION_REFRESH_SECONDS + 1)
    assert client.post(reverse("admin:logout")).status_code == 200
    assert not Session.objects.filter(pk=session.pk).exists()
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_anonymous_requests_create_no_session():
    with CaptureQueriesContext(connection) as captured:
        assert Client().get(reverse("admin:login")).status_code == 200
    assert _session_writes(captured.captured_queries) == []
    assert not Session.objects.exists()
